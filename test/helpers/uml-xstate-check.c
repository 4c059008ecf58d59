/*
 * Checks, on this machine's kernel and CPU, what a UML built for an
 * 832-byte XSAVE area (x87, SSE, AVX) meets: a stopped child under ptrace
 * gets an NT_X86_XSTATE SETREGSET of 832 bytes. Run plain, it shows
 * whether the host refuses that (EFAULT where its XSAVE area is larger);
 * run with uml-xstate.so preloaded, it shows whether the library makes the
 * short transfer work and keeps the rest of the area (AVX-512 and beyond)
 * intact while applying what the short buffer changed.
 *
 * Prints one line: host=<bytes> short_set=<ok|errno N> legacy=<yes|no>
 * extended=<kept|lost|none> and exits 0, or 1 when ptrace itself fails.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#define SHORT 832
#define BIG (1 << 17)
#define XMM0 160 /* offset of xmm0 in the legacy (FXSAVE) area */
#define XSTATE_BV 512

static int xget(pid_t pid, void *buf, size_t len, size_t *got) {
  struct iovec iov = {buf, len};
  if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) != 0) return -1;
  if (got) *got = iov.iov_len;
  return 0;
}

static int xset(pid_t pid, void *buf, size_t len) {
  struct iovec iov = {buf, len};
  return ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0 ? 0 : errno;
}

int main(void) {
  pid_t child = fork();
  if (child == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    _exit(0);
  }
  int st;
  if (child < 0 || waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) return 1;
  unsigned char *full = calloc(1, BIG), *small = calloc(1, SHORT), *after = calloc(1, BIG);
  size_t host = 0;
  if (xget(child, full, BIG, &host) != 0) {
    perror("PTRACE_GETREGSET");
    kill(child, SIGKILL);
    return 1;
  }
  /* A pattern in the highest AVX-512 component the CPU has (Hi16_ZMM, ZMM_Hi256, opmask), set with a full-size write. */
  unsigned a, b, c, d, xcr0lo = 0, off = 0, size = 0, comp = 0;
  __cpuid_count(0xd, 0, xcr0lo, b, c, d);
  for (unsigned i = 7; i >= 5 && host > SHORT; i--) {
    if (!(xcr0lo & (1u << i))) continue;
    __cpuid_count(0xd, i, a, b, c, d);
    if (b + a <= host) {
      off = b, size = a, comp = i;
      break;
    }
  }
  if (size) {
    for (unsigned i = 0; i < size; i++) full[off + i] = (unsigned char)(0xA5 ^ i);
    uint64_t bv;
    memcpy(&bv, full + XSTATE_BV, 8);
    bv |= 1ull << comp;
    memcpy(full + XSTATE_BV, &bv, 8);
    if (xset(child, full, host) != 0) size = 0;
  }
  /* What UML does: a short read, a change in the legacy area, a short write. */
  int set = -1;
  if (xget(child, small, SHORT, NULL) == 0) {
    for (int i = 0; i < 16; i++) small[XMM0 + i] = (unsigned char)(0x5A + i);
    set = xset(child, small, SHORT);
  }
  const char *legacy = "no", *extended = size ? "lost" : "none";
  if (set == 0 && xget(child, after, BIG, NULL) == 0) {
    if (memcmp(after + XMM0, small + XMM0, 16) == 0) legacy = "yes";
    if (size && memcmp(after + off, full + off, size) == 0) extended = "kept";
  }
  if (set == 0) printf("host=%zu short_set=ok legacy=%s extended=%s\n", host, legacy, extended);
  else printf("host=%zu short_set=errno %d legacy=%s extended=%s\n", host, set, legacy, extended);
  kill(child, SIGKILL);
  waitpid(child, &st, 0);
  return 0;
}
