"""Threads a web worker runs beside its requests (the epoch mirror's drainer, the process batches'
senders), started with the process's signals blocked in them.

A signal sent to a process is delivered by the kernel to any one of its threads that does not
block it. Python runs its handlers in the main thread whichever thread took the signal, but a
server that handles signals in C does not: uWSGI runs its worker's shutdown (atexit, the
interpreter's teardown) in the thread that took SIGTERM, and when that was one of these threads,
asleep in its loop, the teardown waited on it for ever and the worker never exited. Blocked here,
those signals go to the server's own threads, as they would without these."""

import signal
import threading

# What servers and supervisors send a worker; faults (SIGSEGV, SIGBUS…) stay with the thread
# that caused them.
PROCESS_SIGNALS = frozenset(
    {
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGHUP,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGALRM,
        signal.SIGCHLD,
        signal.SIGWINCH,
        signal.SIGTTIN,
        signal.SIGTTOU,
        signal.SIGPIPE,
    }
)


def start(target, name):
    """Start `target` in a daemon thread named `name`, with PROCESS_SIGNALS blocked in it."""

    def run():
        signal.pthread_sigmask(signal.SIG_BLOCK, PROCESS_SIGNALS)
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
