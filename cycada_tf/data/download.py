"""Downloads of public raw files: mirrors in order, resumable (HTTP Range), SHA-256 checked, atomic.

A file is fetched into `<raw_dir>/.<name>.partial` and renamed to `<raw_dir>/<name>` only once its size and
SHA-256 are right, so the raw cache never holds half a file under its real name. The partial file is what a
later call resumes from (an interrupted connection, a killed process); a checksum mismatch deletes it, and so
does a mirror that serves a file of another size than the published one (named as short, never resumed from).
A machine without network fails within a bounded time: every failed connection draws on one budget of
`CONNECT_BUDGET_S` seconds, after which the remaining mirrors are not tried.
"""

import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request

from cycada_tf.data.tfrecord import DataError

CHUNK = 1 << 16
TIMEOUT_S = 4.0  # per connection attempt and per stalled read
CONNECT_BUDGET_S = 8.0  # total time failed connections may take before the network is declared unreachable
RESUMES = 5  # times one mirror's transfer is resumed after a dropped connection before the next is tried
PROGRESS_EVERY_S = 1.0
USER_AGENT = "cycada-tf"


class Unreachable(DataError):
    """No mirror of a file could be reached (no network, all mirrors down): the user places it by hand."""


class WrongSize(Exception):
    """A mirror serves a file of another size than the published one (a short or a wrong file): its bytes are
    not kept, nor resumed from."""


def _size_problem(served, size):
    """'a short file (N bytes, the published size is M)' or None when `served` bytes are the published size."""
    if size is None or served is None or served == size:
        return None
    return (f"a {'short' if served < size else 'longer'} file ({served} bytes, the published size is "
            f"{size})")


def _served_size(response, have):
    """The whole file's size as the server announces it: Content-Range's total for a 206, else Content-Length
    (plus what was asked to skip); None when it says nothing."""
    ranged = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in ranged and ranged.rsplit("/", 1)[1].strip().isdigit():
        return int(ranged.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    if length is None or not length.strip().isdigit():
        return None
    return (have if response.status == 206 else 0) + int(length)


class Budget:
    """Seconds of failed connections left (shared by every file of one ensure call)."""

    def __init__(self, seconds=CONNECT_BUDGET_S):
        self.left = seconds

    def spend(self, seconds):
        self.left -= seconds

    @property
    def spent(self):
        return self.left <= 0


def _human(count):
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000.0


class Progress:
    """One line per second and one at the end: bytes done of the total, percent, and the rate."""

    def __init__(self, name, total, start_at, say):
        self.name, self.total, self.say = name, total, say
        self.start_at, self.started, self.last = start_at, time.monotonic(), 0.0

    def update(self, done, final=False):
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = (done - self.start_at) / max(now - self.started, 1e-6)
        of = f" of {_human(self.total)} ({100.0 * done / self.total:.0f}%)" if self.total else ""
        self.say(f"  {self.name}: {_human(done)}{of} at {_human(rate)}/s")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _transfer(url, partial, name, size, say, budget):
    """Append the rest of `url` to `partial` (resuming from its length). Returns True when the server has
    sent everything it announced; False after a dropped connection (the partial file keeps what came)."""
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    if size and have >= size:
        return True
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    started = time.monotonic()
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # asked beyond the end: the server's file ends before `have` bytes
            if size and have < size:
                raise WrongSize(f"a short file (it ends before byte {have}, the published size is {size})")
            return True
        raise
    except (urllib.error.URLError, OSError) as error:
        budget.spend(time.monotonic() - started)
        raise ConnectionError(str(getattr(error, "reason", error))) from None
    with response:
        if have and response.status != 206:  # the server ignored Range: start again from byte 0
            say(f"  {name}: {url} does not resume (HTTP {response.status}); starting again")
            have = 0
        elif have:
            say(f"  {name}: resuming at {_human(have)}")
        served = _served_size(response, have)
        problem = _size_problem(served, size)
        if problem:
            raise WrongSize(problem)
        total = size or served
        progress = Progress(name, total, have, say)
        done = have
        with open(partial, "ab" if have else "wb") as handle:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    handle.write(block)
                    done += len(block)
                    progress.update(done)
            except (http.client.IncompleteRead, socket.timeout, ConnectionError, OSError) as error:
                cause = type(error).__name__
            else:
                cause = None if total is None or done >= total else "the server closed it early"
        progress.update(done, final=True)
        if cause:
            say(f"  {name}: connection dropped at {_human(done)} ({cause})")
        return cause is None


def fetch(name, urls, raw_dir, sha256=None, size=None, say=print, budget=None):
    """`raw_dir/name` from the first of `urls` that gives the right file; returns its path.

    An existing `raw_dir/name` is trusted when its checksum matches (or no checksum is known). Raises
    Unreachable when no URL could be reached, DataError when a file arrived but its checksum is wrong.
    """
    budget = budget or Budget()
    final = os.path.join(raw_dir, name)
    if os.path.isfile(final):
        if sha256 is None or sha256_of(final) == sha256:
            return final
        raise DataError(f"{final}: SHA-256 {sha256_of(final)} is not the published {sha256}; delete it "
                        "and run again to download it")
    os.makedirs(raw_dir, exist_ok=True)
    partial = os.path.join(raw_dir, f".{name}.partial")
    if size and os.path.exists(partial) and os.path.getsize(partial) > size:
        say(f"  {name}: {partial} is longer than the published size ({size} bytes): not resumed from")
        _discard(partial)
    failures, mismatch = [], None
    for url in urls:
        if budget.spent:
            failures.append(f"{url}: not tried, the network is unreachable")
            continue
        say(f"downloading {name} from {url}")
        try:
            complete = False
            for _ in range(1 + RESUMES):
                complete = _transfer(url, partial, name, size, say, budget)
                if complete:
                    break
            if not complete:
                failures.append(f"{url}: the connection kept dropping")
                continue
        except urllib.error.HTTPError as error:
            failures.append(f"{url}: HTTP {error.code}")
            continue
        except ConnectionError as error:
            failures.append(f"{url}: {error}")
            continue
        except WrongSize as error:
            _discard(partial)
            failures.append(f"{url}: serves {error}; not kept")
            say(f"  {name}: refused: {url} serves {error}")
            continue
        problem = _size_problem(os.path.getsize(partial), size)
        if problem:  # the server announced no size, and sent another
            _discard(partial)
            failures.append(f"{url}: sent {problem}; not kept")
            say(f"  {name}: refused: {url} sent {problem}")
            continue
        got = sha256_of(partial)
        if sha256 is not None and got != sha256:
            os.remove(partial)  # a wrong file is never resumed from, nor kept
            mismatch = f"{url} sent {name} with SHA-256 {got}, expected {sha256}"
            say(f"  {name}: refused: SHA-256 {got} is not the published {sha256}")
            continue
        if sha256 is None:
            say(f"  {name}: no published SHA-256 to check against; this copy's is {got}")
        os.replace(partial, final)
        say(f"  {name}: saved to {final}")
        return final
    if mismatch:
        raise DataError(f"{name}: checksum mismatch, refused ({mismatch}); nothing was kept in {raw_dir}")
    raise Unreachable(f"{name}: could not be downloaded ({'; '.join(failures)})")


def _discard(partial):
    """Remove a partial file whose bytes cannot be trusted (another file than the published one)."""
    if os.path.exists(partial):
        os.remove(partial)


def stderr_say(message):
    print(message, file=sys.stderr, flush=True)
