"""registry.background: a worker's own threads take none of the signals sent to the process, so a
server that runs its shutdown in whichever thread took SIGTERM (uWSGI) runs it in one of its
own threads, never in a thread asleep in its loop."""

import signal
import threading

from registry import background


def mask_inside(start):
    seen, done = {}, threading.Event()

    def target():
        seen["mask"] = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        done.set()

    thread = start(target)
    assert done.wait(10)
    thread.join(10)
    return seen["mask"]


def test_a_background_thread_blocks_the_signals_a_server_sends_its_workers():
    mask = mask_inside(lambda target: background.start(target, "test-background"))

    assert {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP} <= mask
    assert signal.SIGSEGV not in mask  # a fault stays with the thread that made it


def test_it_is_a_daemon_thread_with_its_name_and_leaves_the_starting_thread_alone():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    thread = background.start(lambda: None, "named")

    assert thread.daemon and thread.name == "named"
    thread.join(10)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before

    def plain(target):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    assert signal.SIGTERM not in mask_inside(plain)  # what the mask above is compared against
