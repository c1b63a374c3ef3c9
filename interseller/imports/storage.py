"""An import job's file, kept in the database in parts (ImportJobPart) until the job ends.

In the database, so that any worker on any machine can run (or resume) the job; in parts of
PART_BYTES, so that a worker reads it as a stream, holding a part at a time, however big the
file is.
"""

from __future__ import annotations

import bisect
import io

from django.db.models.functions import Length

from ..models import ImportJob, ImportJobPart

PART_BYTES = 1024 * 1024
# Parts written by one INSERT: the request that queues the job holds the file already.
_PARTS_PER_INSERT = 8


def import_job_file_store(*, job: ImportJob, data: bytes) -> None:
    ImportJobPart.objects.bulk_create(
        (
            ImportJobPart(job=job, index=i, data=data[start : start + PART_BYTES])
            for i, start in enumerate(range(0, len(data), PART_BYTES))
        ),
        batch_size=_PARTS_PER_INSERT,
    )


def import_job_file_delete(*, job_id: int) -> None:
    ImportJobPart.objects.filter(job_id=job_id).delete()


def import_job_file_open(*, job_id: int) -> io.BufferedReader:
    """The job's file as a seekable binary stream, reading one part per query when needed."""
    return io.BufferedReader(_PartsFile(job_id), buffer_size=PART_BYTES)


class _PartsFile(io.RawIOBase):
    """The parts, as one file: the current part is held, the others are read when reached."""

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        sizes = (
            ImportJobPart.objects.filter(job_id=job_id)
            .order_by("index")
            .values_list("index", Length("data"))
        )
        self.indexes: list[int] = []
        self.starts: list[int] = []
        self.size = 0
        for index, size in sizes:
            self.indexes.append(index)
            self.starts.append(self.size)
            self.size += size
        self.pos = 0
        self.held = -1  # position in self.indexes of the part in self.part
        self.part = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size:
            return 0
        at = bisect.bisect_right(self.starts, self.pos) - 1
        if at != self.held:
            self.part = b""  # one part in memory at a time
            data = (
                ImportJobPart.objects.filter(job_id=self.job_id, index=self.indexes[at])
                .values_list("data", flat=True)
                .get()
            )
            self.part, self.held = bytes(data), at
        offset = self.pos - self.starts[at]
        n = min(len(buffer), len(self.part) - offset)
        buffer[:n] = memoryview(self.part)[offset : offset + n]
        self.pos += n
        return n
