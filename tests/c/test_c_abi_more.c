/* The C ABI's functions added in ABI 3 (bindings/c/lucidnode.h): users and
 * sessions with login mail through a callback, workflows (define, execute,
 * status), event subscriptions. Happy paths, and the misuse that must come
 * back as an error status with *out_json NULL. Runs in ctest (and so under
 * ASan+UBSan in the sanitizer build).
 *
 *   test_c_abi_more [WORK_DIR]   (default: a fresh directory under $TMPDIR or /tmp)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, mkdtemp under -std=c11 */
#include <lucidnode/lucidnode.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdatomic.h>
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

static int contains(const char* hay, const char* needle) { return hay != NULL && strstr(hay, needle) != NULL; }

/* Copies the JSON string value of "key" (first occurrence) into out. */
static int json_str(const char* json, const char* key, char* out, size_t cap) {
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

static long long json_int(const char* json, const char* key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char* p = json == NULL ? NULL : strstr(json, pat);
  return p == NULL ? -1 : atoll(p + strlen(pat));
}

/* Frees the previous result in *p and hands p to the next call. */
static char** slot(char** p) {
  lucid_free(*p);
  *p = NULL;
  return p;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- the mail callback: keeps the last message's subject ---- */
struct mailbox {
  atomic_int count;
  char to[256];
  char subject[256];
};

static int on_mail(void* user_data, const char* to, const char* subject, const char* body) {
  struct mailbox* box = user_data;
  (void)body;
  snprintf(box->to, sizeof box->to, "%s", to);
  snprintf(box->subject, sizeof box->subject, "%s", subject);
  atomic_fetch_add(&box->count, 1); /* after the copies: the reader waits for it */
  return 1;
}

/* ---- the event callback: counts node_joined events ---- */
struct events_seen {
  atomic_int joined;
  atomic_int total;
};

static void on_event(void* user_data, const char* event_json) {
  struct events_seen* seen = user_data;
  atomic_fetch_add(&seen->total, 1);
  if (contains(event_json, "\"kind\":\"node_joined\"") && contains(event_json, "\"payload\":{}"))
    atomic_fetch_add(&seen->joined, 1);
}

static int write_script(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  if (f == NULL) return 0;
  fputs(text, f);
  fclose(f);
  return chmod(path, 0755) == 0;
}

int main(int argc, char** argv) {
  char dir[512];
  if (argc > 1) {
    snprintf(dir, sizeof dir, "%s", argv[1]);
  } else {
    const char* tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lucid-c-abi3-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 2;
    }
  }
  char db[600], data[600], path[700], opts[2000];
  snprintf(db, sizeof db, "%s/c3.db", dir);
  snprintf(data, sizeof data, "%s/data", dir);
  mkdir(data, 0755);
  unlink(db);

  struct mailbox box;
  atomic_init(&box.count, 0);
  box.to[0] = box.subject[0] = '\0';
  lucid_cluster* c = NULL;
  char* r = NULL;
  int64_t n = 0;

  /* ---- NULL handles and pointers: every new function ---- */
  EXPECT_STATUS(lucid_cluster_open_with_mailer(NULL, on_mail, &box, &c), LUCID_INVALID_ARGUMENT);
  CHECK(c == NULL);
  EXPECT_STATUS(lucid_user_create(NULL, "{}", slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "cluster") == 0 && r == NULL);
  EXPECT_STATUS(lucid_user_get(NULL, "x", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_login_start(NULL, "a@example.com", &n), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_login_verify(NULL, "a@example.com", "123456", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_session_refresh(NULL, "t", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_session_logout(NULL, "s"), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_token_verify(NULL, "t", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_service_create_standalone(NULL, "{}", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_workflow_define(NULL, "{}", slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_workflow_execute(NULL, 1, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_workflow_execution(NULL, 1, slot(&r)), LUCID_INVALID_ARGUMENT);
  lucid_subscription* sub = NULL;
  EXPECT_STATUS(lucid_events_subscribe(NULL, on_event, NULL, &sub), LUCID_INVALID_ARGUMENT);
  CHECK(sub == NULL && r == NULL);
  lucid_subscription_close(NULL);

  snprintf(opts, sizeof opts, "{\"database_path\":\"%s\",\"data_dir\":\"%s\",\"public_url\":\"https://fleet.test\"}",
           db, data);
  EXPECT_STATUS(lucid_cluster_open_with_mailer(opts, on_mail, &box, &c), LUCID_OK);
  if (c == NULL) {
    printf("%d checks, %d failures\n", checks, failures);
    return 1;
  }
  EXPECT_STATUS(lucid_cluster_start(c), LUCID_OK);

  /* ---- events ---- */
  struct events_seen seen;
  atomic_init(&seen.joined, 0);
  atomic_init(&seen.total, 0);
  EXPECT_STATUS(lucid_events_subscribe(c, NULL, &seen, &sub), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "fn") == 0);
  EXPECT_STATUS(lucid_events_subscribe(c, on_event, &seen, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_events_subscribe(c, on_event, &seen, &sub), LUCID_OK);
  CHECK(sub != NULL);
  char* out = NULL;
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"evt-1.example\"}", slot(&out)), LUCID_OK);
  CHECK(atomic_load(&seen.joined) == 1); /* delivered synchronously */
  lucid_subscription_close(sub);
  const int total = atomic_load(&seen.total);
  EXPECT_STATUS(lucid_node_join(c, "{\"hostname\":\"evt-2.example\"}", slot(&out)), LUCID_OK);
  CHECK(atomic_load(&seen.total) == total); /* closed: no more calls */
  lucid_free(out);
  out = NULL;

  /* ---- users ---- */
  EXPECT_STATUS(lucid_user_create(c, "{\"email\":\"ada@example.com\"", slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "user_json") == 0);
  EXPECT_STATUS(lucid_user_create(c, "{\"email\":\"ada@example.com\",\"username\":\"ada\",\"password\":\"Lovelace-1815\","
                                     "\"colour\":\"blue\"}", slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "colour") == 0);
  EXPECT_STATUS(lucid_user_create(c, "{\"email\":\"not-an-address\",\"username\":\"ada\",\"password\":\"Lovelace-1815\"}",
                                  slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "email") == 0);
  EXPECT_STATUS(lucid_user_create(c, "{\"email\":\"ada@example.com\",\"username\":\"ada\",\"password\":\"Lovelace-1815\","
                                     "\"role\":\"emperor\"}", slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "role") == 0 && r == NULL);
  const char* ada = "{\"email\":\"Ada@Example.com\",\"username\":\"ada\",\"password\":\"Lovelace-1815\","
                    "\"first_name\":\"Ada\",\"role\":\"viewer\"}";
  EXPECT_STATUS(lucid_user_create(c, ada, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_user_create(c, ada, slot(&r)), LUCID_OK);
  char user_id[64] = "";
  CHECK(json_str(r, "id", user_id, sizeof user_id) && contains(r, "\"email\":\"ada@example.com\"") &&
        contains(r, "\"role\":\"viewer\"") && contains(r, "\"last_login\":null"));
  CHECK(!contains(r, "Lovelace")); /* the password is never stored or echoed */
  EXPECT_STATUS(lucid_user_create(c, ada, slot(&r)), LUCID_CONFLICT);
  EXPECT_STATUS(lucid_user_get(c, NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_user_get(c, "00000000-0000-0000-0000-000000000000", slot(&r)), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_user_get(c, user_id, slot(&r)), LUCID_OK);
  CHECK(contains(r, "\"username\":\"ada\""));

  /* ---- login through the mail callback ---- */
  EXPECT_STATUS(lucid_login_start(c, NULL, &n), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_login_start(c, "nobody", &n), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_login_start(c, "ghost@example.com", NULL), LUCID_OK); /* no enumeration: same answer */
  EXPECT_STATUS(lucid_login_start(c, "ada@example.com", &n), LUCID_OK);
  CHECK(n == 300);
  for (int i = 0; i < 200 && atomic_load(&box.count) == 0; ++i) sleep_ms(10);
  CHECK(atomic_load(&box.count) == 1); /* the ghost got no mail */
  CHECK(strcmp(box.to, "ada@example.com") == 0);
  const char* code = strrchr(box.subject, ' ');
  CHECK(code != NULL && strlen(code + 1) == 6);
  char good[8] = "000000", bad[8] = "000000";
  if (code != NULL && strlen(code + 1) == 6) {
    memcpy(good, code + 1, 7);
    memcpy(bad, good, 7);
    bad[0] = bad[0] == '9' ? '0' : (char)(bad[0] + 1);
  }
  EXPECT_STATUS(lucid_login_verify(c, "ada@example.com", NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_login_verify(c, "ada@example.com", bad, slot(&r)), LUCID_UNAUTHENTICATED);
  CHECK(r == NULL);
  EXPECT_STATUS(lucid_login_verify(c, "ada@example.com", good, slot(&r)), LUCID_OK);
  char access[1024] = "", refresh[256] = "", session[128] = "";
  CHECK(json_str(r, "access_token", access, sizeof access) && json_str(r, "refresh_token", refresh, sizeof refresh) &&
        json_str(r, "session_id", session, sizeof session) && json_int(r, "expires_in") > 0 &&
        contains(r, "\"user\":{\"id\":\""));
  EXPECT_STATUS(lucid_login_verify(c, "ada@example.com", good, slot(&r)), LUCID_UNAUTHENTICATED); /* single use */

  /* ---- sessions ---- */
  EXPECT_STATUS(lucid_token_verify(c, NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_token_verify(c, "not.a.token", slot(&r)), LUCID_UNAUTHENTICATED);
  EXPECT_STATUS(lucid_token_verify(c, access, slot(&r)), LUCID_OK);
  char subject[64] = "";
  CHECK(json_str(r, "subject", subject, sizeof subject) && strcmp(subject, user_id) == 0 &&
        contains(r, "\"role\":\"viewer\"") && contains(r, session));
  EXPECT_STATUS(lucid_session_refresh(c, NULL, slot(&r)), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_session_refresh(c, "forged-refresh-token", slot(&r)), LUCID_UNAUTHENTICATED);
  EXPECT_STATUS(lucid_session_refresh(c, refresh, slot(&r)), LUCID_OK);
  char access2[1024] = "", refresh2[256] = "";
  CHECK(json_str(r, "access_token", access2, sizeof access2) && json_str(r, "refresh_token", refresh2, sizeof refresh2) &&
        strcmp(refresh2, refresh) != 0 && contains(r, session));
  EXPECT_STATUS(lucid_token_verify(c, access2, slot(&r)), LUCID_OK);
  EXPECT_STATUS(lucid_session_logout(c, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_session_logout(c, session), LUCID_OK);
  EXPECT_STATUS(lucid_session_logout(c, session), LUCID_OK); /* idempotent */
  EXPECT_STATUS(lucid_token_verify(c, access2, slot(&r)), LUCID_UNAUTHENTICATED); /* revoked at once */
  EXPECT_STATUS(lucid_session_refresh(c, refresh2, slot(&r)), LUCID_UNAUTHENTICATED);

  /* ---- workflows: two services piped, define, execute, status ---- */
  snprintf(path, sizeof path, "%s/hello.sh", data);
  CHECK(write_script(path, "#!/bin/sh\necho \"hello-$1\"\n"));
  snprintf(path, sizeof path, "%s/upper.sh", data);
  CHECK(write_script(path, "#!/bin/sh\ntr a-z A-Z\n"));
  EXPECT_STATUS(lucid_service_create_standalone(c, "{\"name\":\"hello\"}", slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "executable_path") == 0);
  EXPECT_STATUS(lucid_service_create_standalone(c, "{\"name\":\"x\",\"executable_path\":\"hello.sh\",\"arguments\":[1]}",
                                                slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "arguments") == 0);
  EXPECT_STATUS(lucid_service_create_standalone(c, "{\"name\":\"x\",\"executable_path\":\"hello.sh\",\"environment\":{\"A\":1}}",
                                                slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "environment.A") == 0);
  /* Outside the data directory: refused. */
  EXPECT_STATUS(lucid_service_create_standalone(c, "{\"name\":\"sh\",\"executable_path\":\"/bin/sh\"}", slot(&r)),
                LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_service_create_standalone(c, "{\"name\":\"hello\",\"executable_path\":\"hello.sh\","
                                                   "\"arguments\":[\"world\"],\"timeout_seconds\":30}", slot(&r)),
                LUCID_OK);
  const long long hello = json_int(r, "id");
  CHECK(hello > 0 && contains(r, "\"service_type\":\"STANDALONE\"") && contains(r, "\"arguments\":[\"world\"]"));
  EXPECT_STATUS(lucid_service_create_standalone(c, "{\"name\":\"upper\",\"executable_path\":\"upper.sh\"}", slot(&r)),
                LUCID_OK);
  const long long upper = json_int(r, "id");
  CHECK(upper > 0 && upper != hello);

  char def[512];
  EXPECT_STATUS(lucid_workflow_define(c, "{\"name\":\"w\",\"nodes\":[]}", slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "nodes") == 0);
  snprintf(def, sizeof def, "{\"name\":\"w\",\"nodes\":[{\"service_id\":%lld}],\"connections\":[{\"source\":0,\"target\":1}]}",
           hello);
  EXPECT_STATUS(lucid_workflow_define(c, def, slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "connections.0.target") == 0);
  snprintf(def, sizeof def, "{\"name\":\"w\",\"nodes\":[{\"service_id\":%lld,\"config\":[]}]}", hello);
  EXPECT_STATUS(lucid_workflow_define(c, def, slot(&r)), LUCID_INVALID_ARGUMENT);
  CHECK(strcmp(lucid_last_error_field(), "nodes.0.config") == 0);
  EXPECT_STATUS(lucid_workflow_define(c, "{\"name\":\"w\",\"nodes\":[{\"service_id\":987654}]}", slot(&r)),
                LUCID_NOT_FOUND);
  CHECK(r == NULL);
  snprintf(def, sizeof def,
           "{\"name\":\"shout\",\"description\":\"hello, louder\",\"nodes\":[{\"service_id\":%lld},{\"service_id\":%lld}],"
           "\"connections\":[{\"source\":0,\"target\":1}]}",
           hello, upper);
  EXPECT_STATUS(lucid_workflow_define(c, def, slot(&r)), LUCID_OK);
  const long long workflow = json_int(r, "workflow_id");
  CHECK(workflow > 0 && contains(r, "\"node_ids\":[") && contains(r, "\"connection_ids\":["));

  EXPECT_STATUS(lucid_workflow_execute(c, 987654, slot(&r)), LUCID_NOT_FOUND);
  EXPECT_STATUS(lucid_workflow_execute(c, workflow, NULL), LUCID_INVALID_ARGUMENT);
  EXPECT_STATUS(lucid_workflow_execute(c, workflow, slot(&r)), LUCID_OK);
  const long long execution = json_int(r, "id");
  CHECK(execution > 0 && contains(r, "\"status\":\"RUNNING\""));
  EXPECT_STATUS(lucid_workflow_execution(c, 987654, slot(&r)), LUCID_NOT_FOUND);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_STATUS(lucid_workflow_execution(c, execution, slot(&r)), LUCID_OK);
    if (!contains(r, "\"status\":\"RUNNING\"")) break;
    sleep_ms(20);
  }
  CHECK(contains(r, "\"status\":\"COMPLETED\"") && contains(r, "\"progress\":100") && contains(r, "\"jobs_total\":2"));
  CHECK(contains(r, "\"stdout\":\"HELLO-WORLD\\n\"")); /* hello's output went through upper */

  EXPECT_STATUS(lucid_cluster_stop(c), LUCID_OK);
  lucid_cluster_close(c);
  lucid_free(r);

  printf("%d checks, %d failures\n", checks, failures);
  if (argc <= 1 && failures == 0) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  return failures == 0 ? 0 : 1;
}
