// WARREN_DCHECK(condition): checks a `// REQUIRES:` precondition in debug builds (NDEBUG not
// defined) and in the sanitizer builds (WARREN_DCHECK_ALWAYS_ON, set by CMake): a violated one
// prints the condition and where it is, then aborts. In release builds the condition is not
// evaluated (only type-checked), so it costs nothing on hot paths.
//
// Use it for what a caller must guarantee, never for input from the network or the disk: those
// get an error.
#pragma once

#include <cstdio>
#include <cstdlib>

#if defined(NDEBUG) && !defined(WARREN_DCHECK_ALWAYS_ON)
#define WARREN_DCHECK(condition) static_cast<void>(sizeof(!(condition)))
#else
#define WARREN_DCHECK(condition) \
  ((condition) ? static_cast<void>(0) : ::warren::internal::DcheckFailed(#condition, __FILE__, __LINE__))

namespace warren::internal {

[[noreturn]] inline void DcheckFailed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: WARREN_DCHECK failed: %s\n", file, line, condition);
  std::abort();
}

}  // namespace warren::internal
#endif
