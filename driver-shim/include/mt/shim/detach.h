// What a daemon that detaches from its terminal asks of the kernel: fork with
// a readiness pipe, a new session, its unused standard streams pointed at
// /dev/null; and whether a stream is a terminal.
#pragma once

#include "mt/shim/status.h"

namespace mt::shim {

// Points standard input and standard output at /dev/null (opened read-write);
// standard error is left as it is. On error nothing is changed.
Status RedirectStdinStdoutToDevNull();

// Detaches the calling process as a forking daemon does, with readiness.
// Forks; the parent never returns: it waits until the child calls
// NotifyDetachedParent (then exits 0) or ends first (then exits with the
// child's exit status, 1 if it was killed). The child gets a new session,
// "/" as working directory and stdin/stdout on /dev/null (stderr stays: it
// carries the log), and receives the readiness descriptor. Error (nothing
// forked): errno-mapped status.
Result<int> DetachWithReadiness();
// Tells the waiting parent that the daemon is ready, and closes ready_fd.
// A negative ready_fd (not detached) does nothing.
void NotifyDetachedParent(int ready_fd);

// True when fd refers to a terminal (progress bars, prompts).
bool IsTerminal(int fd);

}  // namespace mt::shim
