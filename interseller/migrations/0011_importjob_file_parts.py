"""An import job's file moves from ImportJob.data into ordered ImportJobPart rows, so a worker
reads it a part at a time. Jobs not finished yet keep their file (as parts); finished jobs had
theirs emptied already."""

import django.db.models.deletion
from django.db import migrations, models

PART_BYTES = 1024 * 1024  # as interseller/imports/storage.py


def data_to_parts(apps, schema_editor):
    ImportJob = apps.get_model("interseller", "ImportJob")
    ImportJobPart = apps.get_model("interseller", "ImportJobPart")
    for pk in ImportJob.objects.values_list("pk", flat=True).iterator():
        data = bytes(ImportJob.objects.filter(pk=pk).values_list("data", flat=True).get())
        for i, start in enumerate(range(0, len(data), PART_BYTES)):
            ImportJobPart.objects.create(job_id=pk, index=i, data=data[start : start + PART_BYTES])


def parts_to_data(apps, schema_editor):
    ImportJob = apps.get_model("interseller", "ImportJob")
    ImportJobPart = apps.get_model("interseller", "ImportJobPart")
    for pk in ImportJobPart.objects.values_list("job_id", flat=True).distinct():
        parts = ImportJobPart.objects.filter(job_id=pk).order_by("index")
        data = b"".join(bytes(p) for p in parts.values_list("data", flat=True))
        ImportJob.objects.filter(pk=pk).update(data=data)


class Migration(migrations.Migration):
    dependencies = [
        ("interseller", "0010_list_page_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImportJobPart",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("index", models.PositiveIntegerField()),
                ("data", models.BinaryField()),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="parts",
                        to="interseller.importjob",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "index"), name="importjobpart_job_index_uniq"
                    )
                ],
            },
        ),
        migrations.RunPython(data_to_parts, parts_to_data),
        # A default first, so that migrating back can add the column to existing jobs.
        migrations.AlterField(
            model_name="importjob",
            name="data",
            field=models.BinaryField(default=b"", editable=False),
        ),
        migrations.RemoveField(model_name="importjob", name="data"),
    ]
