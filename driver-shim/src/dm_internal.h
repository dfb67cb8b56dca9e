// Private to the libdevmapper users of driver-shim: one log callback for the
// process (libdevmapper has a single global one) that also keeps the last
// error of the calling thread.
#pragma once

#include <libdevmapper.h>

#include <memory>
#include <string>

namespace mt::shim {

struct DmTaskDestroy {
  void operator()(dm_task* t) const { dm_task_destroy(t); }
};
using DmTaskPtr = std::unique_ptr<dm_task, DmTaskDestroy>;

struct DmError {
  std::string message;  // libdevmapper's last error line ("" when none)
  int err = 0;          // its errno, 0 when it gave none
};

// Installs the log callback once (idempotent, thread-safe).
void InitDmLogging();
// The last error this thread's libdevmapper calls reported; clears it.
DmError TakeDmError();

}  // namespace mt::shim
