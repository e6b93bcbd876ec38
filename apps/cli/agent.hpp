// lucidctl agent: a node agent. Joins, waits for approval, keeps its API key
// in a 0600 file, then reports real host stats and runs cluster tasks
// (worker.hpp) until stopped.
#pragma once

#include <atomic>
#include <string>

#include "worker.hpp"

namespace lucidctl {

struct AgentOptions {
  std::string server;        // http://host:port
  std::string hostname;
  std::string ip_address;
  std::string system_info;
  std::string key_file;      // where the API key is kept
  std::string code;          // a registration code given by an admin: poll it instead of joining
  // The join secret that came with `code` (POST /api/v1/nodes). Empty: the
  // one kept in key_file + ".join" (written when this agent joined), if any.
  std::string join_secret;
  std::string disk_path = "/";
  int interval_seconds = 5;  // between stats reports
  int poll_seconds = 3;      // between approval polls
  int max_reports = 0;       // 0: forever
  int max_backoff_seconds = 30;
  bool verbose = false;  // print every report and task step (else only changes and problems)
  bool tasks = true;  // take part in the cluster: device report, work loop
  WorkOptions work;   // server, api_key and disk_path are filled in by run_agent
  // Network node (agent_network.hpp): the Ed25519 identity key file (0600),
  // whether this node offers itself as a relay, and its public endpoint.
  std::string identity_file;
  bool relay = false;
  std::string endpoint;
};

// One line to stdout, whole even when threads print at once.
void agent_say(const std::string& line);

// Like agent_say, but only when the agent runs with --verbose (routine
// events: each stats report, each task step).
void agent_detail(const std::string& line);
void set_agent_verbose(bool verbose);

// The system's host name (gethostname), or empty if it cannot be read.
std::string system_hostname();

// Runs until stopped (`stop` becomes true), max_reports is reached, or a
// permanent failure (exit code 3: hostname active but no key; 4: key rejected;
// 2: the server refused the device report).
int run_agent(const AgentOptions& opts, const std::atomic<bool>& stop);

}  // namespace lucidctl
