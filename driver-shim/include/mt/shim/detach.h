// What a daemon that detaches from its terminal asks of the kernel besides
// fork/setsid: its unused standard streams pointed at /dev/null.
#pragma once

#include "mt/shim/status.h"

namespace mt::shim {

// Points standard input and standard output at /dev/null (opened read-write);
// standard error is left as it is. On error nothing is changed.
Status RedirectStdinStdoutToDevNull();

}  // namespace mt::shim
