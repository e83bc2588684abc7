"""The Ray backend: the same jobs proven by Ray actors, on one machine or across a cluster.

Each actor loads the circuit once (from its node's cache, see `node_cache`) and then proves one task (one
proof's pack of jobs) at a time; the coordinator keeps at most one task in flight per actor, records every
result in the job store itself, and kills and replaces an actor whose task runs past the timeout. Actors
request `num_cpus` and `num_gpus` per job, so with `gpus_per_job` Ray places them on GPU nodes only.

Ray is imported lazily: the local backend and the rest of zkinfer do not need it.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import ProofError, UsageError, ZkinferError
from . import node_cache
from .worker import LOST, TIMEOUT, Outcome, Task, run_task, worker_label


class ProverActor:
    """Runs inside a Ray worker process (wrapped with ray.remote by RayBackend)."""

    def __init__(self, circuit_id: str):
        self.circuit_id = circuit_id
        self.prover = None

    def load_local(self, source_dir: str) -> str | None:
        """Load the circuit from this node's cache, filling it from `source_dir` if that exists here.
        Returns the actor's host:pid, or None when the files must be shipped (then `load_shipped`)."""
        d = node_cache.cached_circuit(self.circuit_id, source_dir)
        return None if d is None else self._load(d)

    def load_shipped(self, bundle: dict) -> str:
        """Fill this node's cache from the object store: `bundle` maps file name -> list of chunk refs."""
        import ray

        def fetch(name):
            for ref in bundle[name]:  # one chunk in memory at a time
                yield ray.get(ref)

        return self._load(node_cache.cached_circuit(self.circuit_id, None, fetch=fetch))

    def _load(self, circuit_dir: Path) -> str:
        from ..prove import Prover

        # cached_circuit hashed the files against the manifest when it filled the node's entry.
        self.prover = Prover(circuit_dir, check_artifacts=False)
        return worker_label()

    def prove(self, task: Task) -> Outcome:
        return run_task(self.prover, task)


class _Slot:
    def __init__(self, handle, ref):
        self.handle = handle
        self.ref = ref                 # the call in flight: a load, or a prove
        self.phase = "loading"         # loading -> (shipping ->) ready <-> busy
        self.label: str | None = None
        self.task: Task | None = None
        self.deadline = 0.0


class RayBackend:
    name = "ray"

    def __init__(self, circuit_dir: Path, circuit_id: str, workers: int, timeout_s: float,
                 address: str | None = None, gpus_per_job: float = 0, cpus_per_job: float = 1,
                 threads_per_worker: int | None = None):
        try:
            import ray
        except ImportError:
            raise UsageError("the ray backend needs Ray: pip install 'zkinfer[ray]'") from None
        self._ray = ray
        self._circuit_dir = circuit_dir
        self._timeout_s = timeout_s
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            try:
                if address:
                    ray.init(address=address)
                else:
                    ray.init(include_dashboard=False)
            except ConnectionError as e:
                raise UsageError(f"cannot connect to the Ray cluster at {address}: {e}") from None
        if gpus_per_job and not address:
            have = ray.cluster_resources().get("GPU", 0)
            if have < gpus_per_job:
                self.close()
                raise UsageError(f"--gpus-per-job {gpus_per_job:g}: the local Ray instance has {have:g} GPUs "
                                 "(use --address to reach a cluster with GPU nodes)")
        options = {"num_cpus": cpus_per_job, "num_gpus": gpus_per_job, "max_restarts": 0}
        if threads_per_worker:
            options["runtime_env"] = {"env_vars": {"RAYON_NUM_THREADS": str(threads_per_worker)}}
        self._actor_class = ray.remote(ProverActor).options(**options)
        self._circuit_id = circuit_id
        self._bundle: dict | None = None
        self._start_failures = 0
        self._max_start_failures = 2 * workers
        self._slots = [self._start() for _ in range(workers)]

    def _start(self) -> _Slot:
        handle = self._actor_class.remote(self._circuit_id)
        return _Slot(handle, handle.load_local.remote(str(self._circuit_dir.resolve())))

    def _shipped_bundle(self) -> dict:
        """The circuit's files in the object store, put there once per batch and only if a node needs them."""
        if self._bundle is None:
            self._bundle = ship_circuit(self._ray, self._circuit_dir)
        return self._bundle

    def free_slots(self) -> int:
        return sum(1 for s in self._slots if s.phase == "ready")

    def busy(self) -> int:
        return sum(1 for s in self._slots if s.phase == "busy")

    def submit(self, task: Task) -> None:
        s = next(s for s in self._slots if s.phase == "ready")
        s.ref, s.task, s.phase = s.handle.prove.remote(task), task, "busy"
        s.deadline = time.monotonic() + self._timeout_s

    def poll(self, timeout: float) -> list[Outcome]:
        ray = self._ray
        pending = {s.ref: s for s in self._slots if s.ref is not None}
        deadlines = [s.deadline - time.monotonic() for s in self._slots if s.phase == "busy"]
        wait_s = max(0.0, min([timeout, *deadlines]))
        if not pending:
            time.sleep(wait_s)
            return []
        done, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)
        if done:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        outcomes: list[Outcome] = []
        for ref in done:
            s = pending[ref]
            s.ref = None
            try:
                value = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # the actor's method raised (prove never does: run_task)
                cause = getattr(e, "cause", None)
                if isinstance(cause, ZkinferError):
                    raise cause from None
                raise ProofError(f"a Ray prover actor failed: {_first_line(e)}") from None
            except ray.exceptions.RayError as e:  # the actor is gone: its process or node died, or never started
                if s.phase != "busy":
                    # Lost while loading the circuit (its node died, say): start another, a bounded number of
                    # times, so one lost node does not end the batch; a prover that can never start does.
                    self._start_failures += 1
                    if self._start_failures > self._max_start_failures:
                        raise ProofError(f"a Ray prover actor could not start ({self._start_failures} tries): "
                                         f"{_first_line(e)}") from None
                    self._replace(s)
                    continue
                outcomes.append(Outcome(s.task.pack_id, LOST, worker=s.label,
                                        reason=f"{s.task.where}: Ray actor {s.label} died: {_first_line(e)}"))
                self._replace(s)
                continue
            if s.phase == "busy":
                outcomes.append(value)
                s.phase, s.task = "ready", None
            elif value is None:  # the circuit is not on that node: ship it
                s.phase, s.ref = "shipping", s.handle.load_shipped.remote(self._shipped_bundle())
            else:
                s.phase, s.label = "ready", value
        now = time.monotonic()
        for s in self._slots:
            if s.phase == "busy" and now > s.deadline:
                outcomes.append(Outcome(s.task.pack_id, TIMEOUT, worker=s.label,
                                        reason=f"{s.task.where}: no proof after {self._timeout_s:g} s; "
                                               f"Ray actor {s.label} was killed"))
                self._replace(s)
        return outcomes

    def _replace(self, s: _Slot) -> None:
        self._ray.kill(s.handle, no_restart=True)
        self._slots[self._slots.index(s)] = self._start()

    def close(self) -> None:
        for s in getattr(self, "_slots", []):
            self._ray.kill(s.handle, no_restart=True)
        self._slots = []
        self._bundle = None  # drops the refs: the object store may free the shipped files
        if self._owns_ray:
            self._ray.shutdown()


def ship_circuit(ray, circuit_dir: Path) -> dict:
    """Put a circuit's files into Ray's object store in chunks: file name -> list of chunk refs."""
    return {name: [ray.put(chunk) for chunk in node_cache.file_chunks(circuit_dir / name)]
            for name in node_cache.NODE_FILES}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
