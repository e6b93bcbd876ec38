// Group commit: concurrent callers' writes share one store transaction.
// Internal to lib/tasks.
//
// A caller hands its write (a function of the transaction's Conn) to run()
// and returns once the transaction holding it committed: an acknowledged
// write is as durable as one that had its own Store::write. Callers that
// arrive while a batch commits queue up; the first of them then leads the
// next batch and runs every queued write in one transaction (leader/follower,
// no thread of its own). A burst of N concurrent writes costs about one
// commit instead of N.
//
// Each write runs inside its own SAVEPOINT: a write that throws is rolled
// back alone and its caller gets its exception (a DatabaseError as
// Error(storage), like Store::write); the others of the batch go on. When the
// batch's transaction fails to commit, every caller of the batch gets that
// error and none of their writes is kept.
//
// Thread-safety: run() may be called from any number of threads at once. A
// write must not call run() (it would wait for its own batch) and must take
// no lock that a caller of run() holds while waiting.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "lucidnode/error.hpp"
#include "store/store.hpp"

namespace lucid::detail {

class GroupCommit {
 public:
  // `store` must outlive this object.
  explicit GroupCommit(Store& store, std::size_t max_batch = 1024) : store_(store), max_batch_(max_batch) {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Runs write(conn) in a transaction shared with concurrent callers and
  // returns after that transaction committed. Throws what write threw (only
  // this write is then undone), or the commit's error (Error(storage), or
  // what the store threw) when the whole batch failed.
  void run(std::function<void(Conn&)> write) {
    Item me;
    me.write = std::move(write);
    std::unique_lock<std::mutex> lk(mu_);
    pending_.push_back(&me);
    while (!me.done) {
      if (leading_) {
        cv_.wait(lk);
        continue;
      }
      leading_ = true;  // this caller commits the next batch (its own write among the first)
      std::vector<Item*> batch;
      while (!pending_.empty() && batch.size() < max_batch_) {
        batch.push_back(pending_.front());
        pending_.pop_front();
      }
      lk.unlock();
      commit(batch);
      lk.lock();
      for (Item* i : batch) i->done = true;
      leading_ = false;
      cv_.notify_all();  // followers of this batch, and the next leader
    }
    lk.unlock();
    if (me.error) std::rethrow_exception(me.error);
  }

  // Transactions committed and writes run so far (for benchmarks and tests).
  std::size_t batches() const {
    std::lock_guard<std::mutex> lk(mu_);
    return batches_;
  }
  std::size_t writes() const {
    std::lock_guard<std::mutex> lk(mu_);
    return writes_;
  }

 private:
  struct Item {
    std::function<void(Conn&)> write;
    std::exception_ptr error;
    bool done = false;  // guarded by mu_
  };

  void commit(std::vector<Item*>& batch) {
    try {
      store_.write([&](Conn& c) {
        for (Item* i : batch) {
          i->error = nullptr;
          c.exec("SAVEPOINT lucid_group_write");
          try {
            i->write(c);
            c.exec("RELEASE lucid_group_write");
          } catch (const DatabaseError& e) {
            i->error = std::make_exception_ptr(Error(Errc::storage, std::string("database error: ") + e.what()));
            c.exec("ROLLBACK TO lucid_group_write");
            c.exec("RELEASE lucid_group_write");
          } catch (...) {
            i->error = std::current_exception();
            c.exec("ROLLBACK TO lucid_group_write");
            c.exec("RELEASE lucid_group_write");
          }
        }
      });
    } catch (...) {
      // Nothing of the batch was kept: every caller learns why.
      const auto why = std::current_exception();
      for (Item* i : batch) i->error = why;
    }
    std::lock_guard<std::mutex> lk(mu_);
    ++batches_;
    writes_ += batch.size();
  }

  Store& store_;
  const std::size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item*> pending_;
  bool leading_ = false;
  std::size_t batches_ = 0, writes_ = 0;
};

}  // namespace lucid::detail
