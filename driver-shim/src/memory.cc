#include "mt/shim/memory.h"

#include <malloc.h>

namespace mt::shim {

void ReleaseFreeMemory() {
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}

}  // namespace mt::shim
