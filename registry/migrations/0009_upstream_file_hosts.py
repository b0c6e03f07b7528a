from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0008_virtual_upstream_rules"),
    ]

    operations = [
        migrations.AddField(
            model_name="upstream",
            name="file_hosts",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
