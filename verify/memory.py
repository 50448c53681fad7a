"""The emulator's memories. Global memory is a set of buffers at distinct 64-bit addresses (each
kernel argument and each module-scope variable is one); an access must lie inside one buffer and
be aligned to its size, and writes into the outputs are counted per byte, so that an output byte
never written, or written twice, is reported. Shared memory is one array per CTA, each declared
variable at its own offset; accesses must stay inside one variable, and each byte remembers which
thread last wrote and read it since the CTA's last barrier, so that two threads touching the same
byte with no barrier between them (one of them writing) is reported as a race."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verify.ptxparse import Var

Array = np.ndarray
GLOBAL_STRIDE = 1 << 36  # buffers sit at multiples of this: far apart, so no access slides into another
CLUSTER_FLAG = np.uint32(1 << 31)  # shared::cluster addresses from mapa: flag | rank << 24 | offset
RANK_SHIFT = 24
NO_THREAD = -1
SHARED_POISON = 0xFF


class MemoryFault(Exception):
    """An access outside every buffer or variable, misaligned, or racing; `lanes` are the lanes
    (in the batch) that made it, `kind` names the fault."""

    def __init__(self, kind: str, message: str, lanes: Array) -> None:
        self.kind = kind
        self.lanes = lanes
        super().__init__(message)


@dataclass
class Buffer:
    name: str
    base: int
    data: Array  # uint8
    writes: Array | None = None  # per-byte write counts, for outputs


class GlobalMemory:
    def __init__(self) -> None:
        self.buffers: list[Buffer] = []

    def add(self, name: str, data: Array, count_writes: bool = False) -> int:
        base = GLOBAL_STRIDE * (len(self.buffers) + 1)
        raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1).copy()
        self.buffers.append(Buffer(name, base, raw, np.zeros(raw.size, np.uint16) if count_writes else None))
        return base

    def _locate(self, addresses: Array, size: int) -> tuple[Array, list[tuple[Buffer, Array]]]:
        """For each address, which buffer holds [address, address + size), or a MemoryFault."""
        addresses = addresses.astype(np.uint64)
        found = np.full(addresses.size, -1)
        for index, buffer in enumerate(self.buffers):
            inside = (addresses >= buffer.base) & (addresses + np.uint64(size) <= buffer.base + buffer.data.size)
            found[inside] = index
        outside = np.nonzero(found < 0)[0]
        if outside.size:
            raise MemoryFault("out_of_bounds", f"{size}-byte global access at {self.describe(addresses[outside[0]])} "
                              "lies outside every buffer", outside)
        misaligned = np.nonzero(addresses % np.uint64(size) != 0)[0]
        if misaligned.size:
            raise MemoryFault("misaligned", f"{size}-byte global access at {self.describe(addresses[misaligned[0]])} "
                              f"is not aligned to {size} bytes", misaligned)
        groups = [(b, np.nonzero(found == i)[0]) for i, b in enumerate(self.buffers)]
        return found, [(b, lanes) for b, lanes in groups if lanes.size]

    def describe(self, address: int) -> str:
        """An address in the user's terms: buffer name and byte offset (or how far outside)."""
        address = int(address)
        nearest = min(self.buffers, key=lambda b: abs(address - b.base)) if self.buffers else None
        if nearest is None:
            return hex(address)
        offset = address - nearest.base
        return f"{nearest.name}+{offset} (the buffer holds {nearest.data.size} bytes)"

    def read(self, addresses: Array, size: int) -> Array:
        """[len(addresses), size] bytes."""
        out = np.empty((addresses.size, size), np.uint8)
        for buffer, lanes in self._locate(addresses, size)[1]:
            start = (addresses[lanes].astype(np.uint64) - np.uint64(buffer.base)).astype(np.int64)
            out[lanes] = buffer.data[start[:, None] + np.arange(size)]
        return out

    def write(self, addresses: Array, data: Array) -> None:
        size = data.shape[1]
        for buffer, lanes in self._locate(addresses, size)[1]:
            start = (addresses[lanes].astype(np.uint64) - np.uint64(buffer.base)).astype(np.int64)
            index = start[:, None] + np.arange(size)
            buffer.data[index] = data[lanes]
            if buffer.writes is not None:
                np.add.at(buffer.writes, index.ravel(), 1)

    def buffer(self, name: str) -> Buffer:
        return next(b for b in self.buffers if b.name == name)


def layout(variables: tuple[Var, ...], dynamic_bytes: int) -> tuple[dict[str, int], dict[str, int]]:
    """Offsets and sizes of shared variables, each at its alignment, in declaration order; an
    unsized (.extern) array is the launch's dynamic shared memory."""
    offsets, sizes, end = {}, {}, 0
    for var in variables:
        align = var.align or var.element_bytes
        end = (end + align - 1) // align * align
        offsets[var.name] = end
        sizes[var.name] = dynamic_bytes if var.count == 0 else var.size
        end += sizes[var.name]
    return offsets, sizes


class SharedMemory:
    """Shared memory of `ctas` CTAs. Since each CTA's last barrier (its epoch), every byte
    remembers its last writer and the lowest and highest thread that read it: a write by thread t
    races unless every read since the barrier was t's own, and a read races with another thread's
    write. Threads of other CTAs of the cluster (through shared::cluster addresses) are ordered
    only by cluster barriers (the cluster epoch): a read from another CTA races with a write since
    the last cluster barrier by another thread, and a write races with such reads since then."""

    def __init__(self, variables: tuple[Var, ...], ctas: int, dynamic_bytes: int = 0, threads_per_cta: int = 0) -> None:
        self.offsets, self.sizes = layout(variables, dynamic_bytes)
        self.variables = variables
        self.size = max((self.offsets[v.name] + self.sizes[v.name] for v in variables), default=0)
        self.starts = np.array([self.offsets[v.name] for v in variables], np.int64)
        self.ends = np.array([self.offsets[v.name] + self.sizes[v.name] for v in variables], np.int64)
        self.row = max(self.size, 1)
        total = ctas * self.row
        self.data = np.full(total, SHARED_POISON, np.uint8)  # unwritten shared memory reads as NaN or -1
        self.writer = np.full(total, NO_THREAD, np.int64)
        self.first_reader = np.zeros(total, np.int64)
        self.last_reader = np.zeros(total, np.int64)
        self.write_epoch = np.full(total, -1, np.int64)
        self.read_epoch = np.full(total, -1, np.int64)
        self.epoch = np.zeros(ctas, np.int64)
        self.threads_per_cta = threads_per_cta  # 0: every access is taken to be the owning CTA's own
        self.cluster_epoch = np.zeros(ctas, np.int64)
        self.write_cluster_epoch = np.full(total, -1, np.int64)
        self.remote_read_epoch = np.full(total, -1, np.int64)  # cluster epoch of the last read from another CTA
        self.remote_first = np.zeros(total, np.int64)
        self.remote_last = np.zeros(total, np.int64)

    def _index(self, ctas: Array, offsets: Array, size: int) -> tuple[Array, Array]:
        """Flat byte indices [accesses, size] and each byte's CTA epoch, or a MemoryFault."""
        offsets = offsets.astype(np.int64)
        which = np.searchsorted(self.starts, offsets, side="right") - 1
        valid = (which >= 0) & (offsets + size <= self.ends[np.maximum(which, 0)])
        bad = np.nonzero(~valid)[0]
        if bad.size:
            raise MemoryFault("out_of_bounds", f"{size}-byte shared access at offset {offsets[bad[0]]} lies outside "
                              f"every shared variable ({self._describe()})", bad)
        misaligned = np.nonzero(offsets % size != 0)[0]
        if misaligned.size:
            raise MemoryFault("misaligned", f"{size}-byte shared access at offset {offsets[misaligned[0]]} is not "
                              f"aligned to {size} bytes", misaligned)
        ctas = ctas.astype(np.int64)
        flat = (ctas * self.row + offsets)[:, None] + np.arange(size)
        return flat, np.broadcast_to(self.epoch[ctas][:, None], flat.shape)

    def check(self, ctas: Array, offsets: Array, size: int) -> None:
        """A MemoryFault if a `size`-byte access at these offsets would be out of bounds or misaligned."""
        self._index(ctas, offsets, size)

    def _describe(self) -> str:
        return ", ".join(f"{v.name} at {self.offsets[v.name]}..{self.offsets[v.name] + self.sizes[v.name]}"
                         for v in self.variables)

    def _offset(self, flat: int) -> str:
        return f"shared offset {flat % self.row} of CTA {flat // self.row} in the batch"

    def _remote(self, threads: Array, ctas: Array, shape: tuple[int, ...]) -> Array:
        """Per byte: is the accessing thread of another CTA than the one owning the memory."""
        if not self.threads_per_cta:
            return np.zeros(shape, bool)
        other = threads.astype(np.int64) // self.threads_per_cta != ctas.astype(np.int64)
        return np.broadcast_to(other[:, None], shape)

    def _written_remotely(self, flat: Array) -> Array:
        writer = self.writer[flat]
        if not self.threads_per_cta:
            return np.zeros(flat.shape, bool)
        return (writer != NO_THREAD) & (writer // self.threads_per_cta != flat // self.row)

    def read(self, ctas: Array, offsets: Array, size: int, threads: Array) -> Array:
        flat, epoch = self._index(ctas, offsets, size)
        who = np.broadcast_to(threads.astype(np.int64)[:, None], flat.shape)
        remote, cluster_epoch = self._remote(threads, ctas, flat.shape), self.cluster_epoch[flat // self.row]
        unordered = (remote | self._written_remotely(flat)) & (self.write_cluster_epoch[flat] == cluster_epoch)
        racing = (((self.write_epoch[flat] == epoch) | unordered) & (self.writer[flat] != who))
        if racing.any():
            access = np.nonzero(racing.any(axis=1))[0]
            raise MemoryFault("race", f"a thread reads {self._offset(int(flat[access[0], 0]))}, written by another "
                              "thread with no barrier between", access)
        stale = flat[self.read_epoch[flat] != epoch]
        self.first_reader[stale] = np.iinfo(np.int64).max
        self.last_reader[stale] = -1
        np.minimum.at(self.first_reader, flat.ravel(), who.ravel())
        np.maximum.at(self.last_reader, flat.ravel(), who.ravel())
        self.read_epoch[flat] = epoch
        if remote.any():
            far, readers = flat[remote], who[remote]
            stale = far[self.remote_read_epoch[far] != cluster_epoch[remote]]
            self.remote_first[stale] = np.iinfo(np.int64).max
            self.remote_last[stale] = -1
            np.minimum.at(self.remote_first, far, readers)
            np.maximum.at(self.remote_last, far, readers)
            self.remote_read_epoch[far] = cluster_epoch[remote]
        return self.data[flat]

    def write(self, ctas: Array, offsets: Array, data: Array, threads: Array) -> None:
        flat, epoch = self._index(ctas, offsets, data.shape[1])
        who = np.broadcast_to(threads.astype(np.int64)[:, None], flat.shape)
        read_by_other = (self.read_epoch[flat] == epoch) & ((self.first_reader[flat] != who) |
                                                            (self.last_reader[flat] != who))
        cluster_epoch = self.cluster_epoch[flat // self.row]
        read_from_afar = (self.remote_read_epoch[flat] == cluster_epoch) & ((self.remote_first[flat] != who) |
                                                                           (self.remote_last[flat] != who))
        unordered = ((self._remote(threads, ctas, flat.shape) | self._written_remotely(flat))
                     & (self.write_cluster_epoch[flat] == cluster_epoch))
        racing = (((self.write_epoch[flat] == epoch) | unordered) & (self.writer[flat] != who)) | read_by_other \
            | read_from_afar
        _, counts = np.unique(flat.ravel(), return_counts=True)
        if racing.any() or (counts > 1).any():
            access = np.nonzero(racing.any(axis=1))[0] if racing.any() else np.array([0])
            raise MemoryFault("race", f"a thread writes {self._offset(int(flat[access[0], 0]))}, which another "
                              "thread touched with no barrier between (or writes in the same instruction)", access)
        self.data[flat] = data
        self.writer[flat] = who
        self.write_epoch[flat] = epoch
        self.write_cluster_epoch[flat] = cluster_epoch
