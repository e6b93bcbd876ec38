// lucidnode: the whole public C++ API in one include.
//
//   #include <lucidnode/lucidnode.hpp>
//   lucid::Options o;
//   o.database_path = "fleet.db";
//   lucid::Cluster cluster(o);   // opens (creates, migrates) the database
//   cluster.start();             // background work: stats, liveness, payouts, blocks
//   cluster.nodes().request_join({"worker-1.example.com"});
//
// Error model: every fallible call throws lucid::Error (error.hpp) carrying a
// stable Errc code, a message, the offending input field and a Reason; never
// another exception type except std::bad_alloc. Each header states, per
// class or method, the errors and the thread-safety: every capability object
// handed out by Cluster may be used from many threads at once.
//
// Versioning: semantic, LUCIDNODE_VERSION_* (version.hpp) at compile time and
// lucid::version() at run time; the shared library's SONAME carries the major
// version. For C and other languages see <lucidnode/lucidnode.h> (C ABI).
#pragma once

#include "lucidnode/api_keys.hpp"
#include "lucidnode/auth.hpp"
#include "lucidnode/clock.hpp"
#include "lucidnode/cluster.hpp"
#include "lucidnode/database.hpp"
#include "lucidnode/error.hpp"
#include "lucidnode/events.hpp"
#include "lucidnode/ledger.hpp"
#include "lucidnode/mail.hpp"
#include "lucidnode/nodes.hpp"
#include "lucidnode/payouts.hpp"
#include "lucidnode/pools.hpp"
#include "lucidnode/poot.hpp"
#include "lucidnode/rate_limit.hpp"
#include "lucidnode/version.hpp"
