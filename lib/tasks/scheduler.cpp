#include "tasks/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace lucid::detail::sched {

std::uint32_t task_type_bit(const std::string& type) {
  for (int i = 0; i < kTaskTypeCount; ++i)
    if (type == kTaskTypes[i]) return 1u << i;
  return 0;
}

ClassAttrs ClassAttrs::make(std::string platform, std::string role, std::vector<std::string> tags, bool gpu,
                            bool internet, std::uint32_t types, std::int64_t cpu, double memory_gb,
                            double storage_gb) {
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  ClassAttrs a;
  a.platform = std::move(platform);
  a.role = std::move(role);
  a.tags = std::move(tags);
  a.gpu = gpu;
  a.internet = internet;
  a.types = types;
  a.cpu = cpu;
  a.memory_q = static_cast<std::int64_t>(std::floor(memory_gb * 4 + 1e-9));
  a.storage_gb = static_cast<std::int64_t>(std::floor(storage_gb + 1e-9));
  return a;
}

std::string ClassAttrs::key() const {
  std::string k = platform + '\x1f' + role + '\x1f';
  for (const auto& t : tags) k += t + '\x1e';
  char buf[96];
  std::snprintf(buf, sizeof buf, "\x1f%d%d|%u|%lld|%lld|%lld", gpu ? 1 : 0, internet ? 1 : 0, types,
                static_cast<long long>(cpu), static_cast<long long>(memory_q), static_cast<long long>(storage_gb));
  return k + buf;
}

std::string Requirements::key() const {
  std::string k = platform + '\x1f' + role + '\x1f';
  for (const auto& t : tags) k += t + '\x1e';
  char buf[128];
  std::snprintf(buf, sizeof buf, "\x1f%d%d|%u|%lld|%.17g|%.17g", gpu ? 1 : 0, internet ? 1 : 0, type_bit,
                static_cast<long long>(min_cpu), min_memory_gb, min_storage_gb);
  return k + buf;
}

bool passes(Filter f, const ClassAttrs& c, const Requirements& r) {
  switch (f) {
    case Filter::task_type: return (c.types & r.type_bit) != 0;
    case Filter::platform: return r.platform.empty() || c.platform == r.platform;
    case Filter::role: return r.role.empty() || c.role == r.role;
    case Filter::tags:
      for (const auto& t : r.tags)
        if (!std::binary_search(c.tags.begin(), c.tags.end(), t)) return false;
      return true;
    case Filter::gpu: return !r.gpu || c.gpu;
    case Filter::internet: return !r.internet || c.internet;
    case Filter::cpu: return c.cpu >= r.min_cpu;
    case Filter::memory: return static_cast<double>(c.memory_q) / 4.0 + 1e-9 >= r.min_memory_gb;
    case Filter::storage: return static_cast<double>(c.storage_gb) + 1e-9 >= r.min_storage_gb;
  }
  return false;
}

bool feasible(const ClassAttrs& c, const Requirements& r) {
  for (Filter f : kFilters)
    if (!passes(f, c, r)) return false;
  return true;
}

std::string unmet_reason(Filter f, const Requirements& r) {
  char buf[64];
  switch (f) {
    case Filter::task_type: return "no device allows this task type";
    case Filter::platform: return "no device has platform '" + r.platform + "'";
    case Filter::role: return "no device has role '" + r.role + "'";
    case Filter::tags: {
      std::string s;
      for (const auto& t : r.tags) s += (s.empty() ? "" : ", ") + t;
      return "no device has all of the tags [" + s + "]";
    }
    case Filter::gpu: return "no device has a GPU";
    case Filter::internet: return "no device has internet access";
    case Filter::cpu:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(r.min_cpu));
      return std::string("no device has at least ") + buf + " CPU cores";
    case Filter::memory:
      std::snprintf(buf, sizeof buf, "%g", r.min_memory_gb);
      return std::string("no device has at least ") + buf + " GB of memory";
    case Filter::storage:
      std::snprintf(buf, sizeof buf, "%g", r.min_storage_gb);
      return std::string("no device has at least ") + buf + " GB of storage";
  }
  return "no device matches";
}

Rank rank_of(std::int64_t device, std::int64_t running, std::int64_t max_concurrent) {
  const std::int64_t m = std::max<std::int64_t>(1, max_concurrent);
  return Rank{running * 1000000 / m, running, device};
}

void Placer::detach(std::int64_t id, Member& m) {
  if (m.cls < 0) return;
  Class& c = classes_[static_cast<std::size_t>(m.cls)];
  if (is_free(m)) {
    c.available.erase(rank_of(id, m.running, m.max_concurrent));
    --free_devices_;
  }
  --c.members;
  if (m.online) --c.online;
  if (m.online && m.eligible) --c.usable;
}

void Placer::attach(std::int64_t id, Member& m) {
  Class& c = classes_[static_cast<std::size_t>(m.cls)];
  ++c.members;
  if (m.online) ++c.online;
  if (m.online && m.eligible) ++c.usable;
  if (is_free(m)) {
    c.available.insert(rank_of(id, m.running, m.max_concurrent));
    ++free_devices_;
  }
}

void Placer::upsert(std::int64_t device, const ClassAttrs& attrs, std::int64_t max_concurrent, bool online) {
  const std::string key = attrs.key();
  int cls;
  auto it = class_by_key_.find(key);
  if (it == class_by_key_.end()) {
    cls = static_cast<int>(classes_.size());
    classes_.push_back(Class{attrs, {}, 0, 0, 0});
    class_by_key_.emplace(key, cls);
    ++version_;
  } else {
    cls = it->second;
  }
  auto [mit, inserted] = devices_.try_emplace(device);
  Member& m = mit->second;
  if (!inserted) detach(device, m);
  m.cls = cls;
  m.max_concurrent = std::max<std::int64_t>(1, max_concurrent);
  m.online = online;
  attach(device, m);
}

void Placer::remove(std::int64_t device) {
  auto it = devices_.find(device);
  if (it == devices_.end()) return;
  detach(device, it->second);
  devices_.erase(it);
}

void Placer::set_online(std::int64_t device, bool online) {
  auto it = devices_.find(device);
  if (it == devices_.end() || it->second.online == online) return;
  detach(device, it->second);
  it->second.online = online;
  attach(device, it->second);
}

void Placer::set_eligible(std::int64_t device, bool eligible) {
  auto it = devices_.find(device);
  if (it == devices_.end() || it->second.eligible == eligible) return;
  detach(device, it->second);
  it->second.eligible = eligible;
  attach(device, it->second);
}

bool Placer::eligible(std::int64_t device) const {
  auto it = devices_.find(device);
  return it != devices_.end() && it->second.eligible;
}

void Placer::add_load(std::int64_t device, std::int64_t delta) {
  auto it = devices_.find(device);
  if (it == devices_.end()) return;
  detach(device, it->second);
  it->second.running = std::max<std::int64_t>(0, it->second.running + delta);
  attach(device, it->second);
}

std::int64_t Placer::running(std::int64_t device) const {
  auto it = devices_.find(device);
  return it == devices_.end() ? 0 : it->second.running;
}

int Placer::intern(const Requirements& r) {
  const std::string key = r.key();
  auto it = sig_by_key_.find(key);
  if (it != sig_by_key_.end()) return it->second;
  const int id = static_cast<int>(sigs_.size());
  Sig s;
  s.req = r;
  std::sort(s.req.tags.begin(), s.req.tags.end());
  s.req.tags.erase(std::unique(s.req.tags.begin(), s.req.tags.end()), s.req.tags.end());
  sigs_.push_back(std::move(s));
  sig_by_key_.emplace(key, id);
  return id;
}

void Placer::refresh(Sig& s) {
  if (s.version == version_) return;
  s.classes.clear();
  s.never_reason.clear();
  for (std::size_t i = 0; i < classes_.size(); ++i)
    if (feasible(classes_[i].attrs, s.req)) s.classes.push_back(static_cast<int>(i));
  if (s.classes.empty()) {
    // Name the first requirement that no class satisfies even on its own.
    for (Filter f : kFilters) {
      bool any = false;
      for (const auto& c : classes_)
        if (passes(f, c.attrs, s.req)) { any = true; break; }
      if (!any) { s.never_reason = unmet_reason(f, s.req); break; }
    }
    if (s.never_reason.empty()) s.never_reason = "no device meets all requirements together";
  }
  s.version = version_;
}

bool Placer::satisfiable(int sig) {
  Sig& s = sigs_.at(static_cast<std::size_t>(sig));
  refresh(s);
  if (s.classes.empty()) return false;
  for (int c : s.classes)
    if (classes_[static_cast<std::size_t>(c)].members > 0) return true;
  return false;
}

bool Placer::explain(int sig, std::string* why) {
  Sig& s = sigs_.at(static_cast<std::size_t>(sig));
  refresh(s);
  std::int64_t members = 0, online = 0, usable = 0;
  for (int ci : s.classes) {
    const Class& c = classes_[static_cast<std::size_t>(ci)];
    if (!c.available.empty()) return true;
    members += c.members;
    online += c.online;
    usable += c.usable;
  }
  if (why) {
    if (s.classes.empty()) *why = s.never_reason;
    else if (members == 0) *why = "no registered device meets the requirements";
    else if (online == 0) *why = "no matching device is online";
    else if (usable == 0) *why = "every matching online device is cordoned, draining or in maintenance";
    else *why = "waiting for a free matching device";
  }
  return false;
}

std::optional<std::int64_t> Placer::place(int sig, std::string* why) {
  Sig& s = sigs_.at(static_cast<std::size_t>(sig));
  refresh(s);
  const Rank* best = nullptr;
  std::int64_t best_penalty = 0;
  for (int ci : s.classes) {
    const Class& c = classes_[static_cast<std::size_t>(ci)];
    if (c.available.empty()) continue;
    const Rank& r = *c.available.begin();
    std::int64_t penalty = 0;
    if (extra_rank_) {
      try {
        penalty = extra_rank_(s.req.type_bit, c.attrs, r.device, r.running, devices_.at(r.device).max_concurrent);
      } catch (...) {
        penalty = std::numeric_limits<std::int64_t>::max();  // documented: a throwing stage ranks it last
      }
    }
    if (!best || penalty < best_penalty || (penalty == best_penalty && r < *best)) {
      best = &r;
      best_penalty = penalty;
    }
  }
  if (!best) {
    if (why) explain(sig, why);
    return std::nullopt;
  }
  const std::int64_t id = best->device;
  add_load(id, 1);
  return id;
}

}  // namespace lucid::detail::sched
