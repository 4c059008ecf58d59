/*
 * uml-xstate.so: an LD_PRELOAD library for linux.uml (User-Mode Linux)
 * that lets a UML kernel built for a small XSAVE area run on a host CPU
 * whose XSAVE area is larger (AVX-512: 2432 bytes or more; AMX: 11008).
 *
 * Why: UML keeps each guest task's floating-point state in a buffer of its
 * own and moves it to and from the host process that runs the task with
 * ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, NT_X86_XSTATE). The host
 * kernel truncates a short GETREGSET without complaint but refuses a
 * SETREGSET whose length is not exactly its own XSAVE size (EFAULT), so a
 * UML built with a fixed 832-byte area (x87, SSE, AVX) dies at the guest's
 * first user instruction: "ptrace set fp regs failed, errno = 14".
 *
 * What it does: every NT_X86_XSTATE transfer shorter than the host's size
 * goes through a full-size shadow kept per UML buffer (UML's buffer
 * address identifies the guest task). A GETREGSET reads the whole area
 * into the shadow and hands UML its first part; a SETREGSET lays UML's
 * part (legacy area, header, AVX) over the shadow and writes the whole
 * area. So the components UML does not know (AVX-512, AMX) are saved and
 * restored per guest task too, and the header's xstate_bv, which UML
 * writes, still decides which components are live. A transfer of the
 * host's size passes through untouched: on a UML that already moves the
 * full area this library does nothing.
 *
 * It touches nothing but ptrace calls of linux.uml's own process tree, and
 * never the host's clock. Environment:
 * - BERKELEYD_UML_XSTATE_LOG=path: one line per process at its first
 *   NT_X86_XSTATE transfer,
 *   "xstate uml=<bytes UML moves> host=<bytes the host takes> <passthrough|adapting|refusing>".
 * - BERKELEYD_UML_XSTATE_EMULATE=N: treat every transfer as N bytes long,
 *   as a UML built for an N-byte area moves them (832: x87, SSE, AVX), so
 *   that a machine whose UML moves enough can show the failure and the fix.
 * - BERKELEYD_UML_XSTATE_ADAPT=0: pass short transfers to the host as they
 *   are (the failure, for that demonstration).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

#define SLOTS 4096 /* guest tasks with a shadow at once; beyond, the host's current state is the base */
#define PROBE_BYTES (1 << 17)

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

static ptrace_fn real_ptrace;
static size_t host_size;
static int logged;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct slot {
  const void *key;
  unsigned char *full;
};
static struct slot slots[SLOTS];

static long emulate = -1; /* -1: not read yet; 0: off */
static int adapt = 1;

static void settings(void) {
  if (emulate >= 0) return;
  const char *e = getenv("BERKELEYD_UML_XSTATE_EMULATE");
  emulate = e ? strtol(e, NULL, 10) : 0;
  if (emulate < 0) emulate = 0;
  const char *a = getenv("BERKELEYD_UML_XSTATE_ADAPT");
  adapt = !(a && strcmp(a, "0") == 0);
}

static void say(size_t uml, size_t host) {
  const char *path = getenv("BERKELEYD_UML_XSTATE_LOG");
  if (logged || !path) return;
  logged = 1;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char line[128];
  int n = snprintf(line, sizeof line, "xstate uml=%zu host=%zu %s\n", uml, host, uml >= host ? "passthrough" : adapt ? "adapting" : "refusing");
  if (n > 0) (void)!write(fd, line, (size_t)n);
  close(fd);
}

/* The host kernel's XSAVE size for ptrace: a GETREGSET with room to spare returns it in iov_len. */
static size_t host_xstate_size(pid_t pid) {
  if (host_size) return host_size;
  void *buf = malloc(PROBE_BYTES);
  if (!buf) return 0;
  struct iovec iov = {buf, PROBE_BYTES};
  int saved = errno;
  if (real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0) host_size = iov.iov_len;
  errno = saved;
  free(buf);
  return host_size;
}

/* The shadow of UML's buffer key (created empty, *fresh = 1); NULL when the table is full. */
static unsigned char *shadow(const void *key, int *fresh) {
  size_t h = ((uintptr_t)key >> 4) * 0x9E3779B97F4A7C15ull;
  *fresh = 0;
  for (size_t i = 0; i < SLOTS; i++) {
    struct slot *s = &slots[(h + i) % SLOTS];
    if (s->key == key) return s->full;
    if (s->key == NULL) {
      s->full = aligned_alloc(64, (host_size + 63) & ~(size_t)63);
      if (!s->full) return NULL;
      s->key = key;
      *fresh = 1;
      return s->full;
    }
  }
  return NULL;
}

static long xstate(int req, pid_t pid, struct iovec *uml) {
  settings();
  struct iovec cut = *uml;
  struct iovec *iov = uml;
  if (emulate > 0 && cut.iov_len > (size_t)emulate) {
    cut.iov_len = (size_t)emulate;
    iov = &cut;
  }
  size_t host = host_xstate_size(pid);
  say(iov->iov_len, host);
  if (host == 0 || iov->iov_len >= host || !adapt) return real_ptrace(req, pid, (void *)NT_X86_XSTATE, iov);
  pthread_mutex_lock(&lock);
  int fresh;
  unsigned char *full = shadow(iov->iov_base, &fresh);
  unsigned char *tmp = NULL;
  long r;
  if (!full) full = tmp = aligned_alloc(64, (host + 63) & ~(size_t)63);
  struct iovec whole = {full, host};
  if (!full) {
    errno = ENOMEM;
    r = -1;
  } else if (req == PTRACE_GETREGSET) {
    r = real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &whole);
    if (r == 0) memcpy(iov->iov_base, full, iov->iov_len);
  } else {
    /* A task never read before (or no shadow): the host process's current state is the base. */
    if (fresh || tmp) {
      r = real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &whole);
      if (r != 0) memset(full, 0, host);
    }
    memcpy(full, iov->iov_base, iov->iov_len);
    r = real_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &whole);
  }
  free(tmp);
  pthread_mutex_unlock(&lock);
  return r;
}

long ptrace(enum __ptrace_request request, ...) {
  va_list ap;
  va_start(ap, request);
  pid_t pid = va_arg(ap, pid_t);
  void *addr = va_arg(ap, void *);
  void *data = va_arg(ap, void *);
  va_end(ap);
  if (!real_ptrace) real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
  if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) && (uintptr_t)addr == NT_X86_XSTATE && data)
    return xstate(request, pid, (struct iovec *)data);
  return real_ptrace(request, pid, addr, data);
}
