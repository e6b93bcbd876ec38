/* The C ABI tests' small harness (test_c_abi.c, test_c_abi_more.c): check
 * counters that report the library's last error, naive JSON peeks, and the
 * result slot that frees each result exactly once (ASan's leak check runs
 * these tests). Header-only, static: each test is one translation unit. */
#ifndef LUCIDNODE_TESTS_C_CHECK_H
#define LUCIDNODE_TESTS_C_CHECK_H

#include <lucidnode/lucidnode.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    ++checks;                                                                                \
    if (!(cond)) {                                                                           \
      ++failures;                                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s [%s])\n", __FILE__, __LINE__, \
              #cond, lucid_last_error_message(), lucid_last_error_field());                  \
    }                                                                                        \
  } while (0)

#define EXPECT_STATUS(call, want)                                                            \
  do {                                                                                       \
    lucid_status got_ = (call);                                                              \
    ++checks;                                                                                \
    if (got_ != (want)) {                                                                    \
      ++failures;                                                                            \
      fprintf(stderr, "%s:%d: %s returned %s, want %s (%s)\n", __FILE__, __LINE__, #call,    \
              lucid_status_name(got_), lucid_status_name(want), lucid_last_error_message()); \
    }                                                                                        \
  } while (0)

static inline int contains(const char* hay, const char* needle) { return hay != NULL && strstr(hay, needle) != NULL; }

/* Copies the JSON string value of "key" (first occurrence) into out. */
static inline int json_str(const char* json, const char* key, char* out, size_t cap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char* p = json == NULL ? NULL : strstr(json, pat);
  if (p == NULL) return 0;
  p += strlen(pat);
  const char* end = strchr(p, '"');
  if (end == NULL || (size_t)(end - p) >= cap) return 0;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
  return 1;
}

/* The integer value of "key" (first occurrence), or -1. */
static inline long long json_int(const char* json, const char* key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char* p = json == NULL ? NULL : strstr(json, pat);
  return p == NULL ? -1 : atoll(p + strlen(pat));
}

/* Frees the result a previous call left in *p and hands p to the next call:
 * every result is freed exactly once. */
static inline char** slot(char** p) {
  lucid_free(*p);
  *p = NULL;
  return p;
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The work directory: argv[1] when given, else a fresh one named after
 * `prefix` under $TMPDIR or /tmp. Returns 0 when it cannot be made. */
static inline int work_dir(int argc, char** argv, const char* prefix, char* dir, size_t cap) {
  if (argc > 1) {
    snprintf(dir, cap, "%s", argv[1]);
    return 1;
  }
  const char* tmp = getenv("TMPDIR");
  snprintf(dir, cap, "%s/%s-XXXXXX", tmp != NULL ? tmp : "/tmp", prefix);
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 0;
  }
  return 1;
}

#endif
