// Task placement in stages (after Nomad): feasibility, ranking, selection.
// Internal to the library; pure data structures (no I/O, no clock, no locks:
// the owner serialises access).
//
// Devices are grouped into computed classes by every attribute a requirement
// looks at (platform, role, tag set, gpu, internet, allowed task types and
// capacity buckets). Feasibility is decided per (requirement signature,
// class) and cached, so a placement costs O(feasible classes x log members),
// not O(devices).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lucid::detail::sched {

// The task types agents execute; a device allows a subset (bit mask).
constexpr const char* kTaskTypes[] = {"echo", "sleep", "system_info", "http_request", "command", "python_eval"};
constexpr int kTaskTypeCount = 6;
// Bit of a task type, or 0 when unknown.
std::uint32_t task_type_bit(const std::string& type);

// What a device offers, as feasibility sees it. Capacities are bucketed
// downwards (memory to 0.25 GB, storage to 1 GB), so a placement never
// assumes more than the device reported.
struct ClassAttrs {
  std::string platform;
  std::string role;
  std::vector<std::string> tags;  // sorted, unique
  bool gpu = false;
  bool internet = false;
  std::uint32_t types = 0;        // allowed task types
  std::int64_t cpu = 0;
  std::int64_t memory_q = 0;      // quarter-GB units
  std::int64_t storage_gb = 0;    // whole GB

  static ClassAttrs make(std::string platform, std::string role, std::vector<std::string> tags, bool gpu,
                         bool internet, std::uint32_t types, std::int64_t cpu, double memory_gb, double storage_gb);
  std::string key() const;
};

struct Requirements {
  std::uint32_t type_bit = 0;
  std::int64_t min_cpu = 0;
  double min_memory_gb = 0;
  double min_storage_gb = 0;
  std::string platform;            // empty: any
  std::string role;                // empty: any
  std::vector<std::string> tags;   // all must be present
  bool gpu = false;
  bool internet = false;
  std::string key() const;
};

// ---- stage 1: feasibility -------------------------------------------------
enum class Filter { task_type, platform, role, tags, gpu, internet, cpu, memory, storage };
constexpr Filter kFilters[] = {Filter::task_type, Filter::platform, Filter::role,     Filter::tags,   Filter::gpu,
                               Filter::internet,  Filter::cpu,      Filter::memory,   Filter::storage};
bool passes(Filter f, const ClassAttrs& c, const Requirements& r);
// True when a device of class `c` can run a task with `r`.
bool feasible(const ClassAttrs& c, const Requirements& r);
// A sentence saying which requirement nothing satisfies ("no device has platform 'windows'").
std::string unmet_reason(Filter f, const Requirements& r);

// ---- stage 2: ranking ------------------------------------------------------
// Lower ranks first: spread by current load (running / max_concurrent, in
// millionths), then fewer running tasks, then lower device id (stable).
struct Rank {
  std::int64_t load_ppm = 0;
  std::int64_t running = 0;
  std::int64_t device = 0;
  bool operator<(const Rank& o) const {
    if (load_ppm != o.load_ppm) return load_ppm < o.load_ppm;
    if (running != o.running) return running < o.running;
    return device < o.device;
  }
};
Rank rank_of(std::int64_t device, std::int64_t running, std::int64_t max_concurrent);

// Optional extra ranking stage, before Rank: lower penalty first. Asked once
// per feasible class about that class's best free member (device, running,
// max_concurrent). Set by lucid::Tasks::set_ranking_stage.
using ExtraRank = std::function<std::int64_t(std::uint32_t type_bit, const ClassAttrs& attrs, std::int64_t device,
                                             std::int64_t running, std::int64_t max_concurrent)>;

// ---- stage 3: selection, over the class index --------------------------------
class Placer {
 public:
  // Adds or updates a device (its class follows its attributes). `running`
  // is kept. Offline devices are members but never selected.
  void upsert(std::int64_t device, const ClassAttrs& attrs, std::int64_t max_concurrent, bool online);
  void remove(std::int64_t device);
  void set_online(std::int64_t device, bool online);
  // The eligibility stage (issue 15): an ineligible device (its node
  // cordoned, draining or in maintenance) is a member but never selected,
  // and explain() names that as the reason. New devices are eligible.
  void set_eligible(std::int64_t device, bool eligible);
  bool eligible(std::int64_t device) const;
  bool has(std::int64_t device) const { return devices_.count(device) != 0; }
  // Adjusts a device's running count (a task it holds started/ended elsewhere).
  void add_load(std::int64_t device, std::int64_t delta);
  std::int64_t running(std::int64_t device) const;

  // Installs the extra ranking stage (empty: none).
  void set_extra_rank(ExtraRank r) { extra_rank_ = std::move(r); }

  // Interns a requirement set; the id is cheap to place repeatedly.
  int intern(const Requirements& r);

  // Selects the best device for a task with requirements `sig` and counts the
  // task on it. nullopt when none is available now; `why` (if given) then says
  // why: nothing can ever run it, or matching devices are offline or busy.
  std::optional<std::int64_t> place(int sig, std::string* why = nullptr);
  // Without placing: true when a device is available for `sig` now, else
  // false with the reason in `why` (as place() gives it).
  bool explain(int sig, std::string* why);
  // Whether any device could ever run `sig` (online or not).
  bool satisfiable(int sig);
  // Whether some device has free capacity at all (an early exit for a pass).
  bool any_capacity() const { return free_devices_ > 0; }

  std::size_t class_count() const { return classes_.size(); }
  std::size_t device_count() const { return devices_.size(); }

 private:
  struct Member {
    int cls = -1;
    std::int64_t max_concurrent = 1;
    std::int64_t running = 0;
    bool online = false;
    bool eligible = true;
  };
  struct Class {
    ClassAttrs attrs;
    std::set<Rank> available;  // online, eligible members with free capacity
    std::int64_t members = 0;
    std::int64_t online = 0;
    std::int64_t usable = 0;   // online and eligible
  };
  struct Sig {
    Requirements req;
    std::uint64_t version = ~0ULL;  // classes_ version the cache belongs to
    std::vector<int> classes;       // feasible classes
    std::string never_reason;       // when `classes` is empty
  };

  void refresh(Sig& s);
  void detach(std::int64_t id, Member& m);
  void attach(std::int64_t id, Member& m);
  bool is_free(const Member& m) const { return m.online && m.eligible && m.running < m.max_concurrent; }

  std::vector<Class> classes_;
  std::unordered_map<std::string, int> class_by_key_;
  std::uint64_t version_ = 0;  // bumped when a class is created
  std::unordered_map<std::int64_t, Member> devices_;
  std::vector<Sig> sigs_;
  std::unordered_map<std::string, int> sig_by_key_;
  std::int64_t free_devices_ = 0;
  ExtraRank extra_rank_;
};

}  // namespace lucid::detail::sched
