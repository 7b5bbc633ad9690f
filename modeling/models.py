"""Database rows for prepared datasets, training runs, generation runs and their conversations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Job(models.Model):
    """Status, progress and cancellation shared by every long-running job."""

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    celery_task_id = models.CharField(max_length=255, blank=True)
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid running it")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def _rows(self) -> models.QuerySet[Job]:
        return type(self)._default_manager.filter(pk=self.pk)

    def mark_running(self, worker: str = "") -> None:
        now = timezone.now()
        self._rows().update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker, error=""
        )
        self.refresh_from_db()

    def report_progress(self, progress: float, message: str = "") -> bool:
        """Store progress and a heartbeat; returns True when a cancel has been requested."""
        self._rows().update(
            progress=max(0.0, min(1.0, progress)),
            message=message[:500],
            heartbeat_at=timezone.now(),
        )
        return self._rows().filter(cancel_requested=True).exists()

    def finish(self, status: str, error: str = "", message: str = "") -> None:
        """Store the final status; progress written by the worker is kept unless it succeeded."""
        fields: dict[str, object] = {
            "status": status,
            "error": error,
            "finished_at": timezone.now(),
        }
        if status == RunStatus.SUCCEEDED:
            fields["progress"] = 1.0
        if message:
            fields["message"] = message[:500]
        self._rows().update(**fields)
        self.refresh_from_db()


class Dataset(Job):
    """Training records prepared from an OIG file by `prepare_data`."""

    name = models.CharField(max_length=200)
    source_path = models.CharField(max_length=1000)
    output_dir = models.CharField(max_length=1000)
    input_sha256 = models.CharField(max_length=64, blank=True)
    n_train = models.PositiveIntegerField(default=0)
    n_val = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.n_train} train / {self.n_val} val)"


class TrainingRun(Job):
    """One `train_lora` run: its config, progress, loss curve and the adapter it wrote."""

    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    base_model = models.CharField(max_length=500)
    data_dir = models.CharField(max_length=1000, blank=True)
    output_dir = models.CharField(max_length=1000)
    config = models.JSONField(default=dict, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss_curve = models.JSONField(default=list, blank=True, help_text="[{step, loss, eval_loss?}]")
    metrics = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name or f"training run {self.pk}"


class GenerationRun(Job):
    """One `generate` run over a file of Backgrounds."""

    name = models.CharField(max_length=200, blank=True)
    training_run = models.ForeignKey(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generation_runs",
    )
    base_model = models.CharField(max_length=500)
    adapter = models.CharField(max_length=1000, blank=True)
    input_path = models.CharField(max_length=1000)
    output_path = models.CharField(max_length=1000)
    params = models.JSONField(default=dict, blank=True)
    n_total = models.PositiveIntegerField(default=0)
    n_done = models.PositiveIntegerField(default=0)
    n_shards = models.PositiveIntegerField(default=1)
    diversity = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name or f"generation run {self.pk}"


class Conversation(models.Model):
    """One generated conversation for one Background, with full provenance."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="conversations")
    record_id = models.CharField(max_length=200, help_text="stable id of the output record")
    item = models.CharField(max_length=200, blank=True, help_text="the input's item/id, if any")
    sample_index = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0, help_text="order in the input file")
    background = models.TextField()
    question = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    turns = models.JSONField(default=list, blank=True)
    raw_text = models.TextField(blank=True)
    parse_ok = models.BooleanField(default=True)
    parse_error = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "position", "sample_index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "record_id"], name="unique_record_per_run"),
        ]

    def __str__(self) -> str:
        return self.record_id
