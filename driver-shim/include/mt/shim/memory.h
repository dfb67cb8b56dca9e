// Process memory housekeeping.
#pragma once

namespace mt::shim {

// Gives the cached large blocks (BlockCache) and the C library's free heap
// memory back to the kernel (glibc: malloc_trim(0), every arena). glibc keeps freed memory of its arenas
// otherwise, so a burst of connections would leave the RSS high after they
// closed. Takes a few milliseconds on a large heap; thread-safe.
void ReleaseFreeMemory();

}  // namespace mt::shim
