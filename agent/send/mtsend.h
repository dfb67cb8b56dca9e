// mtsend: the reference process-server sender (docs: `mtsend --help`).
// MtsendMain is the whole program; mtsend_main.cc is a thin main over it so
// tests can run it in-process too.
#pragma once

namespace mt::send {

// Exit status: 0 success, 1 failure (one line "mtsend: ..." on stderr), 2 usage.
int MtsendMain(int argc, char** argv);

}  // namespace mt::send
