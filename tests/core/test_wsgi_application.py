"""packhouse.wsgi: what a gunicorn worker does once it has loaded the application."""

import gc

import packhouse.wsgi  # noqa: F401 - imported for what it does to the process


def test_what_the_worker_loaded_is_frozen_out_of_the_collector():
    """Django, the apps and the routes are moved out of the collector's generations, so full
    collections no longer walk them."""
    assert gc.get_freeze_count() > 10_000
