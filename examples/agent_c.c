/* A minimal node agent over the C ABI: join, wait for approval, collect the
 * API key once, then report this machine's load, memory and disk every
 * interval, and take one echo task and report its result. The control plane is embedded (the same process opens the
 * database), so the example also plays the operator and approves its own
 * join request; a real agent talks to lucid-server (`lucidctl agent`).
 *
 *   agent_c DB_PATH [ROUNDS [INTERVAL_MS]]    (default 5 rounds, 200 ms)
 */
#define _DEFAULT_SOURCE /* getloadavg, gethostname, nanosleep under -std=c11 */
#include <lucidnode/lucidnode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

static int fail(const char* what, lucid_status st) {
  fprintf(stderr, "agent_c: %s: %s: %s\n", what, lucid_status_name(st), lucid_last_error_message());
  return 1;
}

/* The string value of "key" in a flat JSON object (enough for this example). */
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

/* This machine's figures, as a stats report. */
static void sample(char* out, size_t cap, long round) {
  double load[1] = {0};
  if (getloadavg(load, 1) != 1) load[0] = 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  double cpu = 100.0 * load[0] / (double)(cpus > 0 ? cpus : 1);
  if (cpu > 100) cpu = 100;
  struct sysinfo si;
  double mem = 0;
  long uptime = 0;
  if (sysinfo(&si) == 0 && si.totalram > 0) {
    mem = 100.0 * (double)(si.totalram - si.freeram) / (double)si.totalram;
    uptime = si.uptime;
  }
  struct statvfs fs;
  double disk = 0;
  if (statvfs("/", &fs) == 0 && fs.f_blocks > 0) disk = 100.0 * (double)(fs.f_blocks - fs.f_bfree) / (double)fs.f_blocks;
  snprintf(out, cap,
           "{\"cpu_usage\":%.2f,\"disk_usage\":%.2f,\"memory_percent\":%.2f,\"uptime_seconds\":%ld,"
           "\"active_backups\":%ld}",
           cpu, disk, mem, uptime, round % 2);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: agent_c DB_PATH [ROUNDS [INTERVAL_MS]]\n");
    return 2;
  }
  const long rounds = argc > 2 ? atol(argv[2]) : 5;
  const long interval_ms = argc > 3 ? atol(argv[3]) : 200;
  char opts[1200];
  snprintf(opts, sizeof opts, "{\"database_path\":\"%s\",\"stats_flush_interval_ms\":50}", argv[1]);
  if (strpbrk(argv[1], "\"\\") != NULL) {
    fprintf(stderr, "agent_c: the path must not contain quotes or backslashes\n");
    return 2;
  }

  lucid_cluster* c = NULL;
  lucid_status st = lucid_cluster_open(opts, &c);
  if (st != LUCID_OK) return fail("open", st);
  int rc = 1;
  char* out = NULL;
  char code[16], secret[128], key[256], hostname[128] = "agent-c";
  gethostname(hostname, sizeof hostname - 1);
  char host_json[256];
  snprintf(host_json, sizeof host_json, "{\"hostname\":\"agent-c.%d.example\",\"system_info\":\"agent_c on %s\"}",
           (int)getpid(), strpbrk(hostname, "\"\\") ? "this host" : hostname);

  if ((st = lucid_cluster_start(c)) != LUCID_OK) {
    fail("start", st);
    goto done;
  }
  /* 1. Join: the control plane answers with a registration code, and a join
   * secret that only this joiner holds (it collects the key with it). */
  if ((st = lucid_node_join(c, host_json, &out)) != LUCID_OK) {
    fail("join", st);
    goto done;
  }
  if (!json_str(out, "registration_code", code, sizeof code) || !json_str(out, "join_secret", secret, sizeof secret))
    goto done;
  lucid_free(out);
  out = NULL;
  printf("joined; registration code %s\n", code);

  /* 2. Poll until approved; the operator (here: us) approves the code. */
  key[0] = '\0';
  for (int attempt = 0; attempt < 3 && key[0] == '\0'; ++attempt) {
    if ((st = lucid_node_poll(c, code, secret, &out)) != LUCID_OK) {
      fail("poll", st);
      goto done;
    }
    if (!json_str(out, "api_key", key, sizeof key)) {
      printf("poll %d: pending; approving as the operator\n", attempt + 1);
      char* approved = NULL;
      if ((st = lucid_node_approve_code(c, code, &approved)) != LUCID_OK) {
        fail("approve", st);
        goto done;
      }
      lucid_free(approved);
    }
    lucid_free(out);
    out = NULL;
  }
  if (key[0] == '\0') goto done;
  int64_t node_id = 0;
  if ((st = lucid_node_authenticate(c, key, &node_id)) != LUCID_OK) {
    fail("authenticate", st);
    goto done;
  }
  printf("approved; API key collected, node %lld\n", (long long)node_id);

  /* 3. The loop: report, sleep, repeat. */
  for (long r = 0; r < rounds; ++r) {
    char stats[256];
    sample(stats, sizeof stats, r);
    if ((st = lucid_node_report_stats(c, node_id, stats)) != LUCID_OK) {
      fail("report", st);
      goto done;
    }
    printf("round %ld: %s\n", r + 1, stats);
    struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }

  /* 4. Take work: describe the device, then (as the operator) queue an echo
   * task, take it like an agent (non-blocking polls), run it and report the
   * result. */
  if ((st = lucid_device_report(c, node_id,
                                "{\"platform\":\"linux\",\"tags\":[\"agent-c\"],\"capabilities\":{\"cpu_count\":1,"
                                "\"memory_total_gb\":1,\"storage_total_gb\":1},\"allowed_task_types\":[\"echo\"],"
                                "\"agent_version\":\"agent_c\"}",
                                &out)) != LUCID_OK) {
    fail("device report", st);
    goto done;
  }
  lucid_free(out);
  out = NULL;
  char task_id[64] = "";
  if ((st = lucid_task_submit(c, "{\"task_type\":\"echo\",\"payload\":{\"message\":\"hello from agent_c\"},"
                                 "\"requirements\":{\"required_tags\":[\"agent-c\"]}}",
                              &out)) != LUCID_OK) {
    fail("submit", st);
    goto done;
  }
  json_str(out, "task_id", task_id, sizeof task_id);
  lucid_free(out);
  out = NULL;
  printf("submitted echo task %s\n", task_id);
  char message[256] = "";
  for (int poll = 0; poll < 100 && message[0] == '\0'; ++poll) {
    /* The executor places it; take what waits for us now, without blocking. */
    if ((st = lucid_agent_take_work(c, node_id, &out)) != LUCID_OK) {
      fail("take work", st);
      goto done;
    }
    if (strstr(out, task_id) != NULL && json_str(out, "message", message, sizeof message)) {
      printf("took task %s: echo \"%s\"\n", task_id, message);
    } else {
      struct timespec ts = {0, 20 * 1000000L};
      nanosleep(&ts, NULL);
    }
    lucid_free(out);
    out = NULL;
  }
  if (message[0] == '\0' || strpbrk(message, "\"\\") != NULL) {
    fprintf(stderr, "agent_c: the task never arrived\n");
    goto done;
  }
  if ((st = lucid_task_start(c, node_id, task_id, &out)) != LUCID_OK) {
    fail("start task", st);
    goto done;
  }
  lucid_free(out);
  out = NULL;
  char result[400];
  snprintf(result, sizeof result, "{\"status\":\"completed\",\"result\":{\"echo\":\"%s\"},\"exit_code\":0,\"duration_ms\":0}",
           message);
  if ((st = lucid_task_report_result(c, node_id, task_id, result, &out)) != LUCID_OK) {
    fail("report result", st);
    goto done;
  }
  lucid_free(out);
  out = NULL;
  if ((st = lucid_task_result(c, task_id, &out)) != LUCID_OK) {
    fail("task result", st);
    goto done;
  }
  char tstatus[32] = "", echoed[256] = "";
  json_str(out, "status", tstatus, sizeof tstatus);
  json_str(out, "echo", echoed, sizeof echoed);
  lucid_free(out);
  out = NULL;
  printf("task %s: %s, result echo \"%s\"\n", task_id, tstatus, echoed);

  lucid_cluster_stop(c); /* flush the samples */

  /* 5. What the control plane now knows about us (like every result: a
   * library-allocated string, freed with lucid_free at "done"). */
  if ((st = lucid_node_get(c, node_id, &out)) != LUCID_OK) {
    fail("get", st);
    goto done;
  }
  char liveness[32] = "", status[32] = "";
  json_str(out, "liveness", liveness, sizeof liveness);
  json_str(out, "status", status, sizeof status);
  const char* p = out;
  int samples = 0;
  while ((p = strstr(p, "\"cpu_usage\":")) != NULL) ++samples, ++p;
  /* "latest_stats" repeats the newest of "recent_stats". */
  printf("node %lld: status %s, liveness %s, %d recent samples stored\n", (long long)node_id, status, liveness,
         samples > 0 ? samples - 1 : 0);
  rc = 0;

done:
  lucid_free(out);
  lucid_cluster_close(c);
  return rc;
}
