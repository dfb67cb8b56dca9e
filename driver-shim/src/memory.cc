#include "mt/shim/memory.h"

#include <malloc.h>

#include "mt/shim/block_cache.h"

namespace mt::shim {

void ReleaseFreeMemory() {
  BlockCache::Release();
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}

}  // namespace mt::shim
