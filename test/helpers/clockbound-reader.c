/*
 * A reader of ClockBound's shared-memory segment, protocol version 2,
 * written from aws/clock-bound docs/PROTOCOL.md alone (not from berkeleyd's
 * writer): the tests read with it what the daemon writes.
 *
 *   clockbound-reader PATH                  one consistent snapshot, "name value" lines
 *   clockbound-reader PATH sample N GAP_US  N snapshots GAP_US apart, one "S ..." line each
 *
 * The segment is mapped read-only and shared (mmap), in the CPU's native
 * byte order. The document lists the magic as the bytes 41 4D 5A 4E 43 42
 * 02 00, but ClockBound's clients compare it as two native u32s, 0x414D5A4E
 * and 0x43420200, and so does this reader. A generation of 0 means never
 * written. The generation is odd while the writer writes: a reader that
 * sees it odd, or changed across its read, reads again.
 *
 * Exit: 0 read; 2 usage; 3 cannot open/map or not a v2 segment; 4 no
 * consistent read within the retry budget.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The layout as PROTOCOL.md draws it, 32 bits a row. */
struct segment {
	uint32_t magic[2];            /* Magic Number (u64, compared as two u32) */
	uint32_t segment_size;        /* Segment Size (u32) */
	uint16_t version;             /* Version (u16) */
	uint16_t generation;          /* Generation (u16) */
	int64_t as_of_sec, as_of_nsec;           /* As-Of Timestamp (i64, i64), CLOCK_MONOTONIC_COARSE */
	int64_t void_after_sec, void_after_nsec; /* Void-After Timestamp (i64, i64), CLOCK_MONOTONIC_COARSE */
	int64_t bound;                /* Bound (i64), ns, at as-of */
	uint64_t disruption_marker;   /* Disruption Marker (u64) */
	uint32_t max_drift;           /* Max Drift (u32), ppb */
	int32_t clock_status;         /* Clock Status (i32) */
	uint8_t disruption_support;   /* Clock Disruption Support (u8) */
	uint8_t padding[7];
};
_Static_assert(offsetof(struct segment, generation) == 14, "generation at 14");
_Static_assert(offsetof(struct segment, as_of_sec) == 16, "as-of at 16");
_Static_assert(offsetof(struct segment, bound) == 48, "bound at 48");
_Static_assert(offsetof(struct segment, max_drift) == 64, "max drift at 64");
_Static_assert(offsetof(struct segment, disruption_support) == 72, "disruption support at 72");
_Static_assert(sizeof(struct segment) == 80, "80 bytes");

static const char *STATUS[] = {"unknown", "synchronized", "free-running", "disrupted"};

static int64_t now_ns(clockid_t id) {
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One consistent copy of the segment; returns the retries it took, or -1. */
static long snapshot(const volatile struct segment *shm, struct segment *out) {
	for (long tries = 0; tries < 200000; tries++) {
		uint16_t g1 = __atomic_load_n(&shm->generation, __ATOMIC_ACQUIRE);
		if (g1 == 0 || (g1 & 1)) {
			/* never written yet, or a write in progress: wait a little and read again */
			struct timespec pause = {0, 5000};
			nanosleep(&pause, NULL);
			continue;
		}
		memcpy(out, (const void *)shm, sizeof *out);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint16_t g2 = __atomic_load_n(&shm->generation, __ATOMIC_ACQUIRE);
		if (g1 == g2) {
			out->generation = g1;
			return tries;
		}
	}
	return -1;
}

/* The bound now, grown at max drift since as-of (coarse monotonic). */
static int64_t bound_now(const struct segment *s, int64_t coarse) {
	int64_t as_of = s->as_of_sec * 1000000000LL + s->as_of_nsec;
	int64_t elapsed = coarse > as_of ? coarse - as_of : 0;
	return s->bound + (int64_t)(((__int128)elapsed * s->max_drift + 999999999) / 1000000000);
}

int main(int argc, char **argv) {
	if (argc != 2 && !(argc == 5 && strcmp(argv[2], "sample") == 0)) {
		fprintf(stderr, "usage: %s PATH [sample N GAP_US]\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) { perror(argv[1]); return 3; }
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct segment)) { fprintf(stderr, "%s: shorter than a v2 segment\n", argv[1]); return 3; }
	const volatile struct segment *shm = mmap(NULL, sizeof(struct segment), PROT_READ, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED) { perror("mmap"); return 3; }
	if (shm->magic[0] != 0x414D5A4E || shm->magic[1] != 0x43420200) { fprintf(stderr, "%s: bad magic %08x %08x\n", argv[1], shm->magic[0], shm->magic[1]); return 3; }
	if (shm->version != 2) { fprintf(stderr, "%s: version %u, not 2\n", argv[1], shm->version); return 3; }
	if (shm->segment_size < sizeof(struct segment)) { fprintf(stderr, "%s: segment size %u\n", argv[1], shm->segment_size); return 3; }

	struct segment s;
	if (argc == 2) {
		long tries = snapshot(shm, &s);
		if (tries < 0) { fprintf(stderr, "no consistent read\n"); return 4; }
		/* CLOCK_REALTIME first, then the monotonic clock: a late second read only widens the interval. */
		int64_t real = now_ns(CLOCK_REALTIME);
		int64_t coarse = now_ns(CLOCK_MONOTONIC_COARSE);
		int64_t b = bound_now(&s, coarse);
		int64_t void_after = s.void_after_sec * 1000000000LL + s.void_after_nsec;
		printf("magic %08x %08x\nsegment_size %u\nversion %u\ngeneration %u\n", s.magic[0], s.magic[1], s.segment_size, s.version, s.generation);
		printf("as_of %lld.%09lld\nvoid_after %lld.%09lld\n", (long long)s.as_of_sec, (long long)s.as_of_nsec, (long long)s.void_after_sec, (long long)s.void_after_nsec);
		printf("bound_ns %lld\ndisruption_marker %llu\nmax_drift_ppb %u\n", (long long)s.bound, (unsigned long long)s.disruption_marker, s.max_drift);
		printf("clock_status %d %s\ndisruption_support %u\n", s.clock_status, s.clock_status >= 0 && s.clock_status <= 3 ? STATUS[s.clock_status] : "?", s.disruption_support);
		printf("retries %ld\nrealtime_ns %lld\ncoarse_ns %lld\nvoid %d\n", tries, (long long)real, (long long)coarse, coarse >= void_after);
		printf("bound_now_ns %lld\nearliest_ns %lld\nlatest_ns %lld\n", (long long)b, (long long)(real - b), (long long)(real + b));
		return 0;
	}
	long n = atol(argv[3]), gap_us = atol(argv[4]);
	for (long i = 0; i < n; i++) {
		long tries = snapshot(shm, &s);
		if (tries < 0) { fprintf(stderr, "no consistent read\n"); return 4; }
		/* raw: this kernel's CLOCK_MONOTONIC_RAW, which a test can bring to another clock's time line */
		int64_t raw1 = now_ns(CLOCK_MONOTONIC_RAW);
		int64_t real = now_ns(CLOCK_REALTIME);
		int64_t raw2 = now_ns(CLOCK_MONOTONIC_RAW);
		/* after: a later monotonic reading only widens the bound */
		int64_t coarse = now_ns(CLOCK_MONOTONIC_COARSE);
		printf("S %lld %lld %lld %u %d %lld %u %lld %ld\n", (long long)((raw1 + raw2) / 2), (long long)real, (long long)coarse, s.generation, s.clock_status,
		       (long long)bound_now(&s, coarse), s.max_drift, (long long)(raw2 - raw1), tries);
		if (gap_us > 0) {
			struct timespec pause = {gap_us / 1000000, (gap_us % 1000000) * 1000};
			nanosleep(&pause, NULL);
		}
	}
	return 0;
}
