/* Exercises every function of the C ABI (bindings/c/lucidnode.h), the
 * happy paths and the misuse that must come back as an error status: NULL
 * handles and pointers (a NULL out_json too), malformed JSON, unknown members,
 * unknown ids. Runs in ctest, so also under ASan+UBSan in the sanitizer build.
 *
 *   test_c_abi [WORK_DIR]   (default: a fresh directory under $TMPDIR or /tmp)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */
#include <lucidnode/lucidnode.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    ++checks;                                                                    \
    if (!(cond)) {                                                               \
      ++failures;                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s [%s])\n", __FILE__, \
              __LINE__, #cond, lucid_last_error_message(), lucid_last_error_field()); \
    }                                                                            \
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

static int contains(const char* hay, const char* needle) { return hay != NULL && strstr(hay, needle) != NULL; }

/* Copies the JSON string value of "key" (first occurrence) into out. */
static int json_str(const char* json, const char* key, char* out, size_t cap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char* p = strstr(json, pat);
  if (p == NULL) return 0;
  p += strlen(pat);
  const char* end = strchr(p, '"');
  if (end == NULL || (size_t)(end - p) >= cap) return 0;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
  return 1;
}

/* Frees the result a previous call left in *p and hands p to the next call:
 * every result is freed exactly once (ASan's leak check runs this test). */
static char** slot(char** p) {
  lucid_free(*p);
  *p = NULL;
  return p;
}

static long long json_int(const char* json, const char* key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char* p = strstr(json, pat);
  return p == NULL ? -1 : atoll(p + strlen(pat));
}

int main(int argc, char** argv) {
  char dir[512];
  if (argc > 1) {
    snprintf(dir, sizeof dir, "%s", argv[1]);
  } else {
    const char* tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lucid-c-abi-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 2;
    }
  }
  char db[600], opts[1400];
  snprintf(db, sizeof db, "%s/c.db", dir);
  unlink(db);

  /* ---- library-level functions ---- */
  CHECK(strcmp(lucid_version(), "") != 0);
  CHECK(lucid_abi_version() == LUCID_C_ABI_VERSION);
  CHECK(strcmp(lucid_status_name(LUCID_OK), "ok") == 0);
  CHECK(strcmp(lucid_status_name(LUCID_NOT_FOUND), "not_found") == 0);
  CHECK(strcmp(lucid_status_name(10), "unknown") == 0); /* ABI 2's buffer_too_small is gone */
  CHECK(strcmp(lucid_status_name(LUCID_OUT_OF_MEMORY), "out_of_memory") == 0);
  CHECK(strcmp(lucid_status_name(12345), "unknown") == 0);
  CHECK(strcmp(lucid_status_name(-1), "unknown") == 0);
  lucid_free(NULL);

  /* ---- open: misuse ---- */
  lucid_cluster* c = NULL;
  EXPECT_STATUS(lucid_cluster_open(NULL, &c), LUCID_INVALID_ARGUMENT);
  CHECK(c == NULL);
  EXPECT_STATUS(lucid_cluster_open("{\"database_path\":\"x\"}", NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_cluster_open("{not json", &c), LUCID_INVALID_ARGUMENT);
  CHECK(contains(lucid_last_error_message(), "not valid JSON"));
  EXPECT_STATUS(lucid_cluster_open("[1,2]", &c), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_cluster_open("{}", &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "database_path") == 0);
  EXPECT_STATUS(lucid_cluster_open("{\"database_path\":\"x.db\",\"colour\":1}", &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "colour") == 0);
  EXPECT_STATUS(lucid_cluster_open("{\"database_path\":7}", &c), LUCID_INVALID_ARGUMENT);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s\",\"executor_threads\":0}", db);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "executor_threads") == 0);
  /* Read-only open of a database that does not exist. */
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/absent.db\",\"read_only\":true}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_STORAGE);
  CHECK(c == NULL);

  /* ---- open: options by capability group (issue 20), flat keys as before ---- */
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"poot_window_s\":59}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "poot_window_s") == 0);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"poot\":{\"window_s\":59}}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "poot.window_s") == 0);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"poot\":{\"window_s\":600},\"poot_window_s\":600}",
           dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "poot.window_s") == 0);
  CHECK(contains(lucid_last_error_message(), "give one"));
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"poot\":3}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "poot") == 0);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"poot\":{\"window\":600}}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "poot.window") == 0);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"login\":{\"public_url\":\"\"}}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "login.public_url") == 0);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s/grouped.db\",\"ledger\":{\"block_time_ms\":9}}", dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "ledger.block_time_ms") == 0);
  CHECK(c == NULL);
  snprintf(opts, sizeof opts,
           "{\"database_path\":\"%s/grouped.db\",\"nodes\":{\"stats_flush_interval_ms\":20},"
           "\"ledger\":{\"block_time_ms\":50},\"payouts\":{\"interval_ms\":5},"
           "\"poot\":{\"freshness_s\":60,\"window_s\":600},"
           "\"login\":{\"outbox_dir\":\"%s/grouped-outbox\",\"public_url\":\"https://lucid.example\"}}",
           dir, dir);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_OK);
  CHECK(c != NULL);
  lucid_cluster_close(c);
  c = NULL;

  /* ---- NULL handles: every function ---- */
  char* out = NULL;
  char* r = NULL; /* results of reads, through slot() */
  int64_t id = 0;
  EXPECT_STATUS(lucid_cluster_start(NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_cluster_stop(NULL), LUCID_INVALID_ARGUMENT);
  lucid_cluster_close(NULL);
  EXPECT_STATUS(lucid_node_join(NULL, "{\"hostname\":\"a\"}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "cluster") == 0);
  EXPECT_STATUS(lucid_node_poll(NULL, "ABCDE", NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_approve(NULL, 1, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_approve_code(NULL, "ABCDE", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_authenticate(NULL, "k", &id), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_report_stats(NULL, 1, "{}"), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_nodes_list(NULL, 0, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_get(NULL, 1, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pools_list(NULL, 1, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_poot_validate(NULL, "{}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payout_submit(NULL, "{}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payout_batch(NULL, "b", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payouts_for_node(NULL, "node_x", 1, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payouts_process(NULL, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_ledger_seal(NULL, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_ledger_verify(NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(out == NULL);

  /* ---- open for real ---- */
  snprintf(opts, sizeof opts,
           "{\"database_path\":\"%s\",\"executor_threads\":2,\"stats_flush_interval_ms\":20,"
           "\"block_time_ms\":50,\"payout_interval_ms\":5}",
           db);
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_OK);
  CHECK(c != NULL);
  CHECK(strcmp(lucid_last_error_message(), "") == 0);
  if (c == NULL) return 1;
  EXPECT_STATUS(lucid_cluster_start(c), LUCID_OK);
  EXPECT_STATUS(lucid_cluster_start(c), LUCID_OK); /* idempotent */

  /* ---- join ---- */
  EXPECT_STATUS(lucid_node_join(c, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"a.example\"}", NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"-bad-\"}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "hostname") == 0);
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"a.example\",\"ip_address\":\"999.1.1.1\"}", &out),
                LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "ip_address") == 0);
  CHECK(out == NULL);
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"worker-c.example\",\"ip_address\":\"192.0.2.7\"}", &out), LUCID_OK);
  char code[16] = "", secret[128] = "";
  CHECK(out != NULL && json_str(out, "registration_code", code, sizeof code) && strlen(code) == 5);
  CHECK(out != NULL && json_str(out, "join_secret", secret, sizeof secret) && strncmp(secret, "ljs_", 4) == 0);
  CHECK(contains(out, "\"already_active\":false"));
  long long request_id = out != NULL ? json_int(out, "request_id") : -1;
  CHECK(request_id > 0);
  lucid_free(out);
  out = NULL;

  /* ---- a re-join of the pending hostname: only with its secret ---- */
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"worker-c.example\"}", &out), LUCID_CONFLICT);
  CHECK(out == NULL);
  {
    char body[256];
    snprintf(body, sizeof body, "{\"hostname\":\"worker-c.example\",\"join_secret\":\"%s\"}", secret);
    EXPECT_STATUS(lucid_node_join(c, body, &out), LUCID_OK);
    char again[16] = "";
    CHECK(out != NULL && json_str(out, "registration_code", again, sizeof again) && strcmp(again, code) == 0);
    CHECK(out != NULL && !contains(out, "join_secret"));
    lucid_free(out);
    out = NULL;
  }

  /* ---- poll before approval ---- */
  EXPECT_STATUS(lucid_node_poll(c, NULL, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_poll(c, code, NULL, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_poll(c, "AB", NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_poll(c, code, NULL, &out), LUCID_OK);
  CHECK(contains(out, "\"status\":\"pending\"") && !contains(out, "api_key"));
  lucid_free(out);
  out = NULL;

  /* ---- approve ---- */
  EXPECT_STATUS(lucid_node_approve(c, 999999, &out), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_node_approve(c, request_id, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_approve_code(c, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_approve_code(c, "ZZZZZ", &out), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_node_approve_code(c, code, &out), LUCID_OK);
  CHECK(contains(out, "\"status\":\"active\"") && contains(out, "\"hostname\":\"worker-c.example\""));
  char node_uid[64] = "";
  CHECK(out != NULL && json_str(out, "uid", node_uid, sizeof node_uid));
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_node_approve(c, request_id, &out), LUCID_CONFLICT); /* no longer pending */

  /* A second node approved by id. */
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"worker-d.example\"}", &out), LUCID_OK);
  long long second_id = out != NULL ? json_int(out, "request_id") : -1;
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_node_approve(c, second_id, &out), LUCID_OK);
  lucid_free(out);
  out = NULL;

  /* ---- poll after approval: the key, once, to the secret's holder ---- */
  EXPECT_STATUS(lucid_node_poll(c, code, NULL, &out), LUCID_OK);
  CHECK(out != NULL && contains(out, "\"status\":\"active\"") && !contains(out, "api_key"));
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_node_poll(c, code, "ljs_not-the-secret", &out), LUCID_PERMISSION_DENIED);
  EXPECT_STATUS(lucid_node_poll(c, code, secret, &out), LUCID_OK);
  char api_key[256] = "";
  CHECK(out != NULL && json_str(out, "api_key", api_key, sizeof api_key) && strlen(api_key) > 10);
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_node_poll(c, code, secret, &out), LUCID_NOT_FOUND);

  /* ---- authenticate ---- */
  EXPECT_STATUS(lucid_node_authenticate(c, NULL, &id), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_authenticate(c, api_key, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_authenticate(c, "not-a-key", &id), LUCID_UNAUTHENTICATED);
  EXPECT_STATUS(lucid_node_authenticate(c, api_key, &id), LUCID_OK);
  CHECK(id == request_id);

  /* ---- report stats ---- */
  EXPECT_STATUS(lucid_node_report_stats(c, id, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_report_stats(c, id, "{\"cpu_usage\":\"high\",\"disk_usage\":1}"), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "cpu_usage") == 0);
  EXPECT_STATUS(lucid_node_report_stats(c, id, "{\"cpu_usage\":150,\"disk_usage\":1}"), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_report_stats(c, id, "{\"disk_usage\":1}"), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_report_stats(c, id, "{\"cpu_usage\":1,\"disk_usage\":1,\"gpu\":3}"), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_node_report_stats(c, 424242, "{\"cpu_usage\":1,\"disk_usage\":1}"), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_node_report_stats(c, id, "{\"cpu_usage\":12.5,\"disk_usage\":40,\"memory_percent\":61.5,"
                                               "\"uptime_seconds\":3600,\"active_backups\":2}"),
                LUCID_OK);

  /* ---- list / get ---- */
  EXPECT_STATUS(lucid_nodes_list(c, 0, 10, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_nodes_list(c, -1, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_nodes_list(c, 0, 0, slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "limit") == 0);
  EXPECT_STATUS(lucid_nodes_list(c, 0, 5000, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_nodes_list(c, 0, 10, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"total\":2") && contains(r, "worker-c.example") && contains(r, "worker-d.example"));
  CHECK(contains(r, "\"liveness\":\"online\"") && contains(r, "\"cpu_usage\":12.5"));

  EXPECT_STATUS(lucid_node_get(c, 999999, slot(&r)), LUCID_NOT_FOUND);
  CHECK(r == NULL); /* a failed call leaves *out_json NULL */
  EXPECT_STATUS(lucid_node_get(c, id, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"recent_stats\":[{") && contains(r, "\"memory_percent\":61.5"));

  /* ---- pools ---- */
  EXPECT_STATUS(lucid_pool_create(NULL, "{\"name\":\"p\"}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_add_node(NULL, "pool_x", node_uid, 1, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_create(c, "{\"name\":\"gpu\"}", NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_create(c, "{\"name\":\"gpu\",\"max_nodes\":1.5}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "max_nodes") == 0);
  EXPECT_STATUS(lucid_pool_create(c, "{\"name\":\"\"}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_create(c, "{\"name\":\"gpu\",\"max_nodes\":1}", &out), LUCID_OK);
  char pool_uid[64] = "";
  CHECK(out != NULL && json_str(out, "uid", pool_uid, sizeof pool_uid) && strncmp(pool_uid, "pool_", 5) == 0);
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_pool_create(c, "{\"name\":\"gpu\"}", &out), LUCID_CONFLICT);
  EXPECT_STATUS(lucid_pool_add_node(c, NULL, node_uid, 1, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_add_node(c, pool_uid, NULL, 1, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_add_node(c, pool_uid, node_uid, 1, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_add_node(c, "pool_0000000000000000", node_uid, 1, &out), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_pool_add_node(c, pool_uid, node_uid, 0, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pool_add_node(c, pool_uid, node_uid, 5, &out), LUCID_OK);
  CHECK(contains(out, "\"node_count\":1"));
  lucid_free(out);
  out = NULL;
  /* max_nodes 1: a second node exceeds it. */
  {
    char second_uid[64] = "";
    EXPECT_STATUS(lucid_node_get(c, second_id, slot(&r)), LUCID_OK);
    CHECK(json_str(r, "uid", second_uid, sizeof second_uid));
    EXPECT_STATUS(lucid_pool_add_node(c, pool_uid, second_uid, 5, &out), LUCID_RESOURCE_EXHAUSTED);
  }
  EXPECT_STATUS(lucid_pools_list(c, 0, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pools_list(c, 1, 101, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_pools_list(c, 1, 10, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"total\":1") && contains(r, "\"name\":\"gpu\"") && contains(r, "\"max_nodes\":1"));

  /* ---- PoOT ---- */
  EXPECT_STATUS(lucid_poot_validate(c, "{\"node_uid\":1}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_poot_validate(c, "{\"node_uid\":\"node_0000000000000000\",\"output_data\":\"aGk=\","
                                       "\"timestamp\":\"2026-01-01T00:00:00Z\",\"nonce\":\"n1\"}", &out),
                LUCID_NOT_FOUND);
  char proof[512];
  snprintf(proof, sizeof proof,
           "{\"node_uid\":\"%s\",\"output_data\":\"not base64!\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"nonce\":\"n1\"}",
           node_uid);
  EXPECT_STATUS(lucid_poot_validate(c, proof, &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "output_data") == 0);
  /* Well-formed; judged invalid (an answer, not an error): the timestamp is
   * far from now, and the node was never started. */
  snprintf(proof, sizeof proof,
           "{\"node_uid\":\"%s\",\"output_data\":\"aGVsbG8=\",\"timestamp\":\"2001-01-01T00:00:00Z\",\"nonce\":\"n1\"}",
           node_uid);
  EXPECT_STATUS(lucid_poot_validate(c, proof, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_poot_validate(c, proof, &out), LUCID_OK);
  CHECK(contains(out, "\"valid\":false") && contains(out, "\"status\":\"invalid\""));
  CHECK(contains(out, "\"output_hash\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\""));
  lucid_free(out);
  out = NULL;

  /* ---- payouts ---- */
  EXPECT_STATUS(lucid_payout_submit(c, "{\"payout_requests\":[]}", NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payout_submit(c, "{\"payout_requests\":[]}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "payout_requests") == 0);
  EXPECT_STATUS(lucid_payout_submit(c, "{\"payout_requests\":{}}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payout_submit(c, "{\"payout_requests\":[3]}", &out), LUCID_INVALID_ARGUMENT);
  char batch[512];
  snprintf(batch, sizeof batch, "{\"payout_requests\":[{\"node_id\":\"%s\",\"amount\":12.5}]}", node_uid);
  EXPECT_STATUS(lucid_payout_submit(c, batch, &out), LUCID_INVALID_ARGUMENT); /* amount must be a string */
  CHECK(strcmp(lucid_last_error_field(), "payout_requests.0.amount") == 0);
  snprintf(batch, sizeof batch, "{\"payout_requests\":[{\"node_id\":\"%s\",\"amount\":\"-1\"}]}", node_uid);
  EXPECT_STATUS(lucid_payout_submit(c, batch, &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "payout_requests.0.amount") == 0);
  EXPECT_STATUS(lucid_payout_submit(c, "{\"payout_requests\":[{\"node_id\":\"node_0000000000000000\",\"amount\":\"1\"}]}", &out),
                LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "payout_requests.0.node_id") == 0);
  snprintf(batch, sizeof batch,
           "{\"batch_id\":\"c-abi-1\",\"payout_requests\":[{\"node_id\":\"%s\",\"amount\":\"12.5\","
           "\"wallet_address\":\"TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\"},{\"node_id\":\"%s\",\"amount\":\"1\"}]}",
           node_uid, node_uid);
  EXPECT_STATUS(lucid_payout_submit(c, batch, &out), LUCID_OK);
  CHECK(contains(out, "\"batch_id\":\"c-abi-1\"") && contains(out, "\"payout_count\":2") && contains(out, "\"created\":true"));
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_payout_submit(c, batch, &out), LUCID_OK); /* idempotent */
  CHECK(contains(out, "\"created\":false"));
  lucid_free(out);
  out = NULL;
  snprintf(batch, sizeof batch, "{\"batch_id\":\"c-abi-1\",\"payout_requests\":[{\"node_id\":\"%s\",\"amount\":\"2\"}]}",
           node_uid);
  EXPECT_STATUS(lucid_payout_submit(c, batch, &out), LUCID_CONFLICT);

  size_t settled = 0;
  EXPECT_STATUS(lucid_payouts_process(c, &settled), LUCID_OK);
  EXPECT_STATUS(lucid_payouts_process(c, NULL), LUCID_OK);
  EXPECT_STATUS(lucid_payout_batch(c, NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payout_batch(c, "no-such-batch", slot(&r)), LUCID_NOT_FOUND);
  /* The cluster is started, so the executor's own payout rounds run beside
     these calls and may hold the payouts mid-round: wait (bounded) until both
     are settled rather than assume the two explicit rounds finished them. */
  for (int i = 0; i < 500; ++i) {
    EXPECT_STATUS(lucid_payout_batch(c, "c-abi-1", slot(&r)), LUCID_OK);
    if (contains(r, "\"completed\":1") && contains(r, "\"failed\":1")) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    lucid_payouts_process(c, NULL);
  }
  CHECK(contains(r, "\"completed\":1") && contains(r, "\"failed\":1"));

  EXPECT_STATUS(lucid_payouts_for_node(c, NULL, 1, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payouts_for_node(c, "node_0000000000000000", 1, 10, slot(&r)), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_payouts_for_node(c, node_uid, 0, 10, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_payouts_for_node(c, node_uid, 1, 10, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"total\":2") && contains(r, "\"amount\":\"12.5\"") &&
        contains(r, "\"failure_reason\":\"wallet_address_missing\""));

  /* ---- tasks: NULL handle on every task function ---- */
  EXPECT_STATUS(lucid_task_submit(NULL, "{\"task_type\":\"echo\"}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_get(NULL, "t", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_result(NULL, "t", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_tasks_schedule(NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_device_report(NULL, id, "{}", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_agent_take_work(NULL, id, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_start(NULL, id, "t", &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_report_result(NULL, id, "t", "{}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "cluster") == 0);
  CHECK(out == NULL);

  /* ---- device report ---- */
  const char* dev_json =
      "{\"platform\":\"linux\",\"tags\":[\"c-abi\"],\"capabilities\":{\"cpu_count\":4,\"memory_total_gb\":8,"
      "\"storage_total_gb\":100,\"has_gpu\":false,\"internet\":true},\"allowed_task_types\":[\"echo\"],"
      "\"max_concurrent\":2,\"agent_version\":\"c-test\"}";
  EXPECT_STATUS(lucid_device_report(c, id, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_device_report(c, id, dev_json, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_device_report(c, id, "{\"platform\":", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "device_json") == 0);
  EXPECT_STATUS(lucid_device_report(c, id, "{\"platform\":\"linux\",\"allowed_task_types\":[\"echo\"]}", &out),
                LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "capabilities") == 0);
  EXPECT_STATUS(lucid_device_report(c, id,
                                    "{\"platform\":\"linux\",\"capabilities\":{\"cpu_count\":4,\"memory_total_gb\":8,"
                                    "\"storage_total_gb\":1,\"bogus\":1},\"allowed_task_types\":[\"echo\"]}",
                                    &out),
                LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "capabilities.bogus") == 0);
  EXPECT_STATUS(lucid_device_report(c, id,
                                    "{\"platform\":\"linux\",\"capabilities\":{\"cpu_count\":4,\"memory_total_gb\":8,"
                                    "\"storage_total_gb\":1},\"allowed_task_types\":[\"teleport\"]}",
                                    &out),
                LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_device_report(c, 999999, dev_json, &out), LUCID_NOT_FOUND);
  CHECK(out == NULL);
  EXPECT_STATUS(lucid_device_report(c, id, dev_json, &out), LUCID_OK);
  CHECK(contains(out, "\"platform\":\"linux\"") && contains(out, "\"tags\":[\"c-abi\"]") &&
        contains(out, "\"max_concurrent\":2") && contains(out, "\"reported\":true"));
  lucid_free(out);
  out = NULL;

  /* ---- submit ---- */
  EXPECT_STATUS(lucid_task_submit(c, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"echo\"}", NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_submit(c, "[1,2", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "task_json") == 0);
  EXPECT_STATUS(lucid_task_submit(c, "{\"payload\":{}}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "task_type") == 0);
  EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"teleport\"}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "task_type") == 0);
  EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"echo\",\"priority\":\"asap\"}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "priority") == 0);
  EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"echo\",\"requirements\":{\"min_cpu_cores\":0}}", &out),
                LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "requirements.min_cpu_cores") == 0);
  EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"echo\",\"requirements\":{\"cores\":2}}", &out),
                LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "requirements.cores") == 0);
  EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"echo\",\"metadata\":[1]}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "metadata") == 0);
  CHECK(out == NULL);
  EXPECT_STATUS(lucid_task_submit(c,
                                  "{\"task_type\":\"echo\",\"payload\":{\"message\":\"hi from C\"},\"priority\":\"high\","
                                  "\"requirements\":{\"required_tags\":[\"c-abi\"],\"min_cpu_cores\":2},"
                                  "\"metadata\":{\"by\":\"test_c_abi\"}}",
                                  &out),
                LUCID_OK);
  char task_id[64] = "";
  CHECK(out != NULL && json_str(out, "task_id", task_id, sizeof task_id) && strlen(task_id) == 36);
  CHECK(contains(out, "\"priority\":\"high\"") && contains(out, "\"required_tags\":[\"c-abi\"]") &&
        contains(out, "\"payload\":{\"message\":\"hi from C\"}"));
  lucid_free(out);
  out = NULL;

  /* ---- get / result ---- */
  EXPECT_STATUS(lucid_task_get(c, NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_get(c, task_id, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_get(c, "00000000-0000-0000-0000-000000000000", slot(&r)), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_task_get(c, task_id, slot(&r)), LUCID_OK);
  CHECK(contains(r, task_id) && contains(r, "\"metadata\":{\"by\":\"test_c_abi\"}"));
  EXPECT_STATUS(lucid_task_result(c, NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_result(c, task_id, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_result(c, "no-such-task", slot(&r)), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_task_result(c, task_id, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"final\":false") && contains(r, "\"result_data\":null"));

  /* ---- agent side: take, start, report ---- */
  EXPECT_STATUS(lucid_tasks_schedule(c), LUCID_OK);
  EXPECT_STATUS(lucid_agent_take_work(c, id, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_agent_take_work(c, 999999, &out), LUCID_NOT_FOUND);
  CHECK(out == NULL);
  EXPECT_STATUS(lucid_agent_take_work(c, id, &out), LUCID_OK);
  CHECK(contains(out, task_id) && contains(out, "\"task_type\":\"echo\"") && contains(out, "\"message\":\"hi from C\""));
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_agent_take_work(c, id, &out), LUCID_OK); /* taken: not delivered twice */
  CHECK(out != NULL && !contains(out, task_id));
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_task_start(c, id, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_start(c, id, task_id, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_start(c, id, "no-such-task", &out), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_task_start(c, second_id, task_id, &out), LUCID_CONFLICT); /* another node's */
  CHECK(out == NULL);
  EXPECT_STATUS(lucid_task_start(c, id, task_id, &out), LUCID_OK);
  CHECK(contains(out, "\"status\":\"running\""));
  lucid_free(out);
  out = NULL;
  const char* done_json = "{\"status\":\"completed\",\"result\":{\"echo\":\"hi from C\"},\"exit_code\":0,\"duration_ms\":7}";
  EXPECT_STATUS(lucid_task_report_result(c, id, task_id, NULL, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_report_result(c, id, NULL, done_json, &out), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_report_result(c, id, task_id, done_json, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_report_result(c, id, task_id, "{\"status\":", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "result_json") == 0);
  EXPECT_STATUS(lucid_task_report_result(c, id, task_id, "{\"status\":\"completed\"}", &out), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "duration_ms") == 0);
  EXPECT_STATUS(lucid_task_report_result(c, id, task_id, "{\"status\":\"done\",\"duration_ms\":1}", &out),
                LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_task_report_result(c, id, "no-such-task", done_json, &out), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_task_report_result(c, second_id, task_id, done_json, &out), LUCID_CONFLICT);
  CHECK(out == NULL);
  EXPECT_STATUS(lucid_task_report_result(c, id, task_id, done_json, &out), LUCID_OK);
  CHECK(contains(out, "\"status\":\"success\"") && contains(out, "\"result_data\":{\"echo\":\"hi from C\"}"));
  lucid_free(out);
  out = NULL;
  EXPECT_STATUS(lucid_task_result(c, task_id, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"status\":\"success\"") && contains(r, "\"final\":true") &&
        contains(r, "\"exit_code\":0") && contains(r, "\"execution_time_seconds\":0.007") &&
        contains(r, "\"result_data\":{\"echo\":\"hi from C\"}"));

  /* ---- ledger ---- */
  int64_t blocks = -1;
  EXPECT_STATUS(lucid_ledger_seal(c, &blocks), LUCID_OK);
  CHECK(blocks >= 0);
  EXPECT_STATUS(lucid_ledger_seal(c, NULL), LUCID_OK);
  EXPECT_STATUS(lucid_ledger_verify(c, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_ledger_verify(c, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"ok\":true") && contains(r, "\"transactions\":1") && contains(r, "\"pending\":0"));

  EXPECT_STATUS(lucid_cluster_stop(c), LUCID_OK);
  EXPECT_STATUS(lucid_cluster_stop(c), LUCID_OK); /* idempotent */
  lucid_cluster_close(c);

  /* ---- read-only, without the key file ---- */
  char key[620];
  snprintf(key, sizeof key, "%s.key", db);
  CHECK(unlink(key) == 0);
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s\",\"read_only\":true}", db);
  c = NULL;
  EXPECT_STATUS(lucid_cluster_open(opts, &c), LUCID_OK);
  if (c != NULL) {
    EXPECT_STATUS(lucid_ledger_verify(c, slot(&r)), LUCID_OK);
    CHECK(contains(r, "\"ok\":true"));
    EXPECT_STATUS(lucid_nodes_list(c, 0, 10, slot(&r)), LUCID_OK);
    CHECK(contains(r, "\"total\":2"));
    /* Writes are refused, not silently dropped. */
    EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"worker-e.example\"}", &out), LUCID_STORAGE);
    EXPECT_STATUS(lucid_node_report_stats(c, id, "{\"cpu_usage\":1,\"disk_usage\":1}"), LUCID_STORAGE);
    EXPECT_STATUS(lucid_ledger_seal(c, NULL), LUCID_STORAGE);
    EXPECT_STATUS(lucid_task_submit(c, "{\"task_type\":\"echo\"}", &out), LUCID_STORAGE);
    EXPECT_STATUS(lucid_task_get(c, task_id, slot(&r)), LUCID_OK); /* reads work */
    CHECK(contains(r, "\"status\":\"success\""));
    EXPECT_STATUS(lucid_node_poll(c, "ABCDE", NULL, &out), LUCID_STORAGE); /* a write: it issues the key */
    /* Looking a registration code up needs the key: unavailable, not a wrong answer. */
    EXPECT_STATUS(lucid_node_approve_code(c, "ABCDE", &out), LUCID_UNAVAILABLE);
    CHECK(out == NULL);
    lucid_cluster_close(c);
  }

  lucid_free(r);
  printf("%d checks, %d failures\n", checks, failures);
  if (argc <= 1 && failures == 0) {
    unlink(db);
    char side[700];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    for (const char* const* f = (const char* const[]){"grouped.db", "grouped.db-wal", "grouped.db-shm",
                                                       "grouped.db.key", NULL};
         *f != NULL; ++f) {
      snprintf(side, sizeof side, "%s/%s", dir, *f);
      unlink(side);
    }
    snprintf(side, sizeof side, "%s/grouped-outbox", dir);
    rmdir(side);
    rmdir(dir);
  }
  return failures == 0 ? 0 : 1;
}
