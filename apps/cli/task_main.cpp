// lucid-task: runs one built-in task type for `lucidctl agent` as a child
// process (`lucid-task __task TYPE`, payload on stdin), as `lucidctl __task`
// does. Why a second binary: lucidctl links the PostgreSQL library for its
// local `--db postgresql://` commands, and loading libpq with its ~20
// libraries on every task exec cost the agent about 5 ms per task (issue 19:
// 257 -> ~160 echo tasks/s with 20 real agents). This one links only what
// the task types need. The agent falls back to `lucidctl __task` when it is
// not installed beside it.
#include "task_exec.hpp"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "__task") return lucidctl::run_builtin_task(argv[2]);
  std::fprintf(stderr, "usage: lucid-task __task TYPE (payload on stdin; run by lucidctl agent)\n");
  return 2;
}
