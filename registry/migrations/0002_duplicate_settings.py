# Duplicate settings become rows (project, format, allowed, exception regex) instead of a pair of
# columns per format on PackageSettings. The formats that had columns are named here, once: this
# is history (the columns that existed), not a list the running code keeps.

import django.db.models.deletion
from django.db import migrations, models

import registry.models

COLUMN_FORMATS = ("generic", "maven", "nuget")


def columns_to_rows(apps, schema_editor):
    PackageSettings = apps.get_model("registry", "PackageSettings")
    DuplicateSetting = apps.get_model("registry", "DuplicateSetting")
    rows = []
    for settings_row in PackageSettings.objects.all().iterator():
        for name in COLUMN_FORMATS:
            rows.append(
                DuplicateSetting(
                    project_id=settings_row.project_id,
                    format=name,
                    allowed=getattr(settings_row, f"{name}_duplicates_allowed"),
                    exception_regex=getattr(settings_row, f"{name}_duplicate_exception_regex"),
                )
            )
    DuplicateSetting.objects.bulk_create(rows, batch_size=1000)


def rows_to_columns(apps, schema_editor):
    PackageSettings = apps.get_model("registry", "PackageSettings")
    DuplicateSetting = apps.get_model("registry", "DuplicateSetting")
    by_project = {}
    for row in DuplicateSetting.objects.filter(format__in=COLUMN_FORMATS).iterator():
        values = by_project.setdefault(row.project_id, {})
        values[f"{row.format}_duplicates_allowed"] = row.allowed
        values[f"{row.format}_duplicate_exception_regex"] = row.exception_regex
    PackageSettings.objects.bulk_create(
        [PackageSettings(project_id=project_id, **values) for project_id, values in by_project.items()],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DuplicateSetting",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("format", models.CharField(max_length=16)),
                ("allowed", models.BooleanField(default=True)),
                (
                    "exception_regex",
                    models.CharField(blank=True, max_length=255, validators=[registry.models.validate_regex]),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="duplicate_settings",
                        to="accounts.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("project", "format"), name="duplicate_setting_unique_format")
                ],
            },
        ),
        migrations.RunPython(columns_to_rows, rows_to_columns),
        migrations.DeleteModel(name="PackageSettings"),
    ]
