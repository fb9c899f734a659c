// LD_PRELOAD shim for tests: open() of a path ending in ".gated" waits until "<path>.go" exists,
// so a test can hold a program inside a file load (e.g. the server's "loading model" state).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static void wait_gate(const char* path) {
  size_t n = strlen(path);
  if (n < 6 || strcmp(path + n - 6, ".gated") != 0 || n > 4000) return;
  char go[4100];
  memcpy(go, path, n);
  memcpy(go + n, ".go", 4);
  for (int i = 0; i < 600 && access(go, F_OK) != 0; ++i) usleep(100000);  // at most 60 s
}

#define SHIM(name)                                                             \
  int name(const char* path, int flags, ...) {                                 \
    static int (*real)(const char*, int, ...);                                 \
    if (!real) real = (int (*)(const char*, int, ...))dlsym(RTLD_NEXT, #name); \
    va_list ap;                                                                \
    va_start(ap, flags);                                                       \
    /* O_TMPFILE contains O_DIRECTORY's bit, so all of its bits must be set */ \
    int mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)         \
                   ? va_arg(ap, int)                                           \
                   : 0;                                                        \
    va_end(ap);                                                                \
    wait_gate(path);                                                           \
    return real(path, flags, mode);                                            \
  }
SHIM(open)
SHIM(open64)
