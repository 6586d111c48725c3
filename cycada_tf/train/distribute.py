"""The tf.distribute strategy of --strategy: every stage builds its networks and optimizers and trains under it,
with global batch sizes (each replica takes its share; stages/base.py scales each replica's loss)."""

import contextlib
import json
import os

import tensorflow as tf

from cycada_tf.config.run_fields import STRATEGIES  # noqa: F401 - --strategy's choices, declared with the flag

TF_CONFIG = "TF_CONFIG"
WORKER_TASKS = ("chief", "worker")  # the task types that train; "evaluator" and "ps" do not
# How long a worker may go without a sign of life before the others stop with an error. TensorFlow's default,
# 10 s, can end a healthy run whose workers are starved of CPU on a loaded host. It is also how long the chief
# waits for a worker that was killed, while a chief that ends is noticed at once.
HEARTBEAT_TIMEOUT_S = 60


def _devices():
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def cluster_from_env():
    """The parsed TF_CONFIG ({"cluster": {...}, "task": {"type", "index"}}), or None when it is not set.
    Raises ValueError naming TF_CONFIG when it is not JSON of that shape."""
    text = os.environ.get(TF_CONFIG, "").strip()
    if not text:
        return None
    example = ('{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", '
               '"index": 0}}')
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{TF_CONFIG} is not valid JSON ({error}); expected e.g. {example}") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not any(isinstance(cluster.get(t), list) and cluster.get(t)
                                                for t in WORKER_TASKS):
        raise ValueError(f"{TF_CONFIG} must name the cluster's workers in \"cluster\": {{\"worker\": "
                         f"[\"host:port\", ...]}}; got {text!r}. Expected e.g. {example}")
    if (not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int)
            or not 0 <= task["index"] < len(cluster[task["type"]])):
        raise ValueError(f"{TF_CONFIG} must say which task this process is, as \"task\": {{\"type\": "
                         f"\"worker\", \"index\": i}} with a type and index of its cluster; got {text!r}")
    return value


def cluster_workers(value):
    """How many training tasks (chief and workers) a parsed TF_CONFIG names."""
    return sum(len(value["cluster"].get(t, [])) for t in WORKER_TASKS)


def strategy_from_flag(name):
    """None (the default strategy, exactly the code path of a plain single-device run) for auto on one device;
    MirroredStrategy over the host's GPUs (or logical CPUs when there is no GPU) for mirrored, and for auto
    on a host with several GPUs; OneDeviceStrategy on the first device for one_device;
    MultiWorkerMirroredStrategy of the cluster in TF_CONFIG for multi_worker, and for auto when TF_CONFIG
    names 2 or more workers.

    TF_CONFIG is read before any device is listed: MultiWorkerMirroredStrategy must configure the collective
    ops before TensorFlow initialises its devices."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "multi_worker" or name == "auto":
        cluster = cluster_from_env()
        if name == "multi_worker" and cluster is None:
            raise ValueError(f"--strategy=multi_worker needs the {TF_CONFIG} environment variable: the cluster "
                             f"and this process's task, e.g. {TF_CONFIG}='{{\"cluster\": {{\"worker\": "
                             f"[\"host0:12345\", \"host1:12345\"]}}, \"task\": {{\"type\": \"worker\", "
                             f"\"index\": 0}}}}' (index 1 on the second host)")
        if name == "multi_worker" or cluster_workers(cluster or {"cluster": {}}) >= 2:
            _configure_coordination(cluster)
            return tf.distribute.MultiWorkerMirroredStrategy()
    devices = _devices()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    if name == "mirrored" or (name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        if not tf.config.list_logical_devices("GPU"):
            # CPU collectives of a step with two optimizers (pixel, feature stages) met out of order across
            # replicas ("Shape mismatch in the collective instance"); reducing on one device orders them.
            return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
        return tf.distribute.MirroredStrategy(devices)
    return None


def _configure_coordination(cluster):
    """The coordination service MultiWorkerMirroredStrategy would configure (it keeps one configured before
    it), with HEARTBEAT_TIMEOUT_S. No public API sets the timeout, hence TensorFlow's internal context."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context
    if context.context().coordination_service is not None:
        return
    jobs = {t: len(cluster["cluster"][t]) for t in WORKER_TASKS if cluster["cluster"].get(t)}
    leader = "chief" if "chief" in jobs else "worker"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000,
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=t, num_tasks=n) for t, n in jobs.items()])


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the run's files: always, except under multi_worker, where only the chief
    does."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return chief_task(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def chief_task(task_type, task_id, cluster):
    """Whether a task of the cluster {type: [address, ...]} is its chief: the task of type chief, or worker 0
    of a cluster without one."""
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_index(strategy):
    """This process's task, as "<type>_<index>" (multi_worker), or None."""
    if not is_multi_worker(strategy):
        return None
    return f"{strategy.cluster_resolver.task_type}_{strategy.cluster_resolver.task_id}"


def barrier(strategy):
    """Under multi_worker, return once every worker has called it (an all-reduce of one number): what the
    chief wrote before it, every worker may read after it. Elsewhere nothing to wait for."""
    if is_multi_worker(strategy):
        def one():
            return tf.constant(1.0)

        @tf.function(autograph=False)
        def all_reduce():
            return strategy.reduce("SUM", strategy.run(one), axis=None)

        with peer_errors(strategy):
            all_reduce()


# What a collective raises when another worker has gone (exited, crashed, or silent past HEARTBEAT_TIMEOUT_S).
PEER_LOST = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
             tf.errors.DeadlineExceededError)


@contextlib.contextmanager
def peer_errors(strategy):
    """Under multi_worker, turns the error of a collective whose peer has gone into one line (a ValueError,
    which the experiment mains print): the other worker's output says why it left."""
    try:
        yield
    except PEER_LOST as error:
        if not is_multi_worker(strategy):
            raise
        raise ValueError(f"{worker_index(strategy)}: another worker of the cluster in {TF_CONFIG} left it (its "
                         f"output says why; here: {type(error).__name__}); rerun the command on every worker "
                         f"to continue from the chief's last checkpoint") from None


def scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
