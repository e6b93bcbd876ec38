// The PostgreSQL backend of the store, as an optional library
// (liblucidnode_postgres; CMake: lucidnode::lucidnode_postgres).
//
// liblucidnode knows the store's backend interface, not libpq: a program that
// wants `database_path = "postgresql://..."` links liblucidnode_postgres
// (which loads libpq and, through Debian's libpq5, TLS, Kerberos and LDAP
// libraries) and calls enable_postgres() once before it opens a Cluster.
// Without it, a PostgreSQL database argument is refused with
// Error(invalid_argument, field "database_path") saying so; SQLite needs
// nothing.
#pragma once

#include "lucidnode/export.hpp"

namespace lucid {
LUCID_PUBLIC_BEGIN

// Registers the PostgreSQL backend with the store (lucid::register_database_provider):
// from now on parse_database checks PostgreSQL URIs with libpq and a Cluster
// opens them. Idempotent; thread-safe; never throws.
void enable_postgres();

LUCID_PUBLIC_END
}  // namespace lucid
