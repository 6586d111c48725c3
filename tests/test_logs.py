"""Where a run's words go: its lines on stderr, the results table alone on stdout (`> results.txt` keeps the
table), and a stage of sub-second epochs says a line after its first and last epochs and one every ~10 s
between, not one per epoch."""



import official_files
from conftest import tiny_config
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import progress
from cycada_tf.experiments import runner


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _epochs(callback, clock, epochs, seconds, stop_after=None):
    """Run `callback` through `epochs` epochs of 8 steps, `seconds` each; the model stops after `stop_after`."""
    class Model:
        stop_training = False

    callback.set_model(Model())
    callback.set_params({"epochs": epochs, "steps": 8})
    callback.on_train_begin()
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        for batch in range(1, 8):
            clock.t += seconds / 8
            callback.on_train_batch_begin(batch)
        clock.t += seconds / 8
        if stop_after is not None and epoch + 1 == stop_after:
            callback.model.stop_training = True
        callback.on_epoch_end(epoch, {"loss": 1.0})
        if callback.model.stop_training:
            break
    callback.on_train_end()


def test_sub_second_epochs_are_summarised_to_a_line_every_10_s():
    clock, lines = FakeClock(), []
    _epochs(progress.Progress("source", lines.append, now=clock), clock, epochs=60, seconds=0.5)
    epochs = [int(line.split()[2].split("/")[0]) for line in lines if " epoch " in line]
    # 30 s of epochs: the first, then one each 10 s (epochs 21, 41), and the last
    assert epochs == [1, 21, 41, 60], lines
    assert all(line.startswith("source epoch ") and "left in the stage" in line for line in lines)


def test_long_epochs_each_get_their_line_and_a_stop_gets_its_own():
    clock, lines = FakeClock(), []
    _epochs(progress.Progress("pixel", lines.append, now=clock), clock, epochs=4, seconds=30.0)
    assert [line.split(",")[0] for line in lines if " epoch " in line] == [
        f"pixel epoch {k}/4" for k in range(1, 5)]
    clock, lines = FakeClock(), []
    _epochs(progress.Progress("feature", lines.append, may_stop_early=True, now=clock), clock, epochs=50,
            seconds=0.2, stop_after=7)
    assert [line.split(",")[0] for line in lines] == ["feature epoch 1/50", "feature epoch 7/50"]


def test_stdout_holds_the_table_and_stderr_the_lines(tmp_path, capsys):
    flat = official_files.unlabelled_photos(tmp_path / "photos")
    run_dir = tmp_path / "run"
    config = config_lib.DigitsConfig(data_dir=str(tmp_path / "data"), run_dir=str(run_dir), target=f"folder:{flat}",
                                     stages=("oracle",), seeds=(0,), verbose=0, summary_every_epochs=0)
    runner.run(config)
    captured = capsys.readouterr()
    assert captured.out == open(run_dir / "results.md").read()
    assert "seed 0: stage 'oracle' skipped: the target has no labels" in captured.err
    assert "report: " in captured.err and "[cycada " not in captured.out


def test_a_run_without_an_adapted_stage_counts_no_final_choice_in_its_time_left(embedded_data_dir, tmp_path, capsys):
    """--stages=source: no final model is chosen (the source model alone is no choice), so when the stage ends
    the run has nothing left, not the final choice's prior cost."""
    runner.run(tiny_config("digits", data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), stages=("source",),
                           source_epochs=1, summary_every_epochs=0))
    done = [line for line in capsys.readouterr().err.splitlines() if "stage 'source' done" in line]
    assert len(done) == 1 and done[0].rstrip().split("; ")[-1].startswith("run ~0 s left, until"), done
