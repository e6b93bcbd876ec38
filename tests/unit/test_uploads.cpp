// lib/workflows/uploads (the /api/ws FILE_UPLOAD_* engine: files, limits,
// per-user quotas) and lib/workflows/service_search (SERVICE_SEARCH).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "lucidnode/lucidnode.hpp"
#include "workflows/uploads.hpp"
#include "support.hpp"
#include "workflows/service_search.hpp"

using namespace lucid;
using detail::JsonObject;
using testsupport::code_of;
using testsupport::field_of;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  testsupport::TempDir dir;
  std::unique_ptr<Cluster> cluster;
  std::int64_t service_id = 0;
  Fixture() {
    fs::create_directories(dir.path / "data");
    Options o;
    o.database_path = dir.file("up.db");
    o.data_dir = dir.file("data");
    cluster = std::make_unique<Cluster>(o);
    ServiceCreate c;
    c.type = "relay";
    c.name = "Relay One";
    c.description = "Forwards Packets";
    service_id = cluster->workflows().create_service(c).id;
  }
  std::shared_ptr<detail::Uploads> uploads(int per_user, std::int64_t bytes_per_user) {
    detail::UploadLimits l;
    l.data_dir = dir.file("data");
    l.max_uploads_per_user = per_user;
    l.max_upload_bytes_per_user = bytes_per_user;
    return std::make_shared<detail::Uploads>(cluster->workflows(), l);
  }
  std::string start_json(const std::string& sid, std::int64_t size) const {
    return R"({"session_id":")" + sid + R"(","service_id":)" + std::to_string(service_id) +
           R"(,"file_name":"run.sh","file_size":)" + std::to_string(size) + "}";
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

TEST_CASE("uploads: chunks in order become the service's file") {
  Fixture f;
  auto up = f.uploads(4, 1 << 20);
  detail::UploadSet set(up);
  CHECK(set.start("alice", JsonObject(f.start_json("s1", 5))) == "s1");
  CHECK(field_of([&] { set.chunk(JsonObject(R"({"session_id":"s1","chunk_index":1,"data":"aGk="})")); }) ==
        "chunk_index");
  set.chunk(JsonObject(R"({"session_id":"s1","chunk_index":0,"data":"aGVs"})"));  // "hel"
  CHECK(field_of([&] { set.end(JsonObject(R"({"session_id":"s1"})")); }) == "file_size");  // 3 of 5 bytes
  set.chunk(JsonObject(R"({"session_id":"s1","chunk_index":1,"data":"bG8="})"));  // "lo"
  const auto done = set.end(JsonObject(R"({"session_id":"s1"})"));
  CHECK(done.path == "uploads/" + std::to_string(f.service_id) + "/run.sh");
  CHECK(done.file_size == 5);
  CHECK(slurp(f.dir.path / "data" / done.path) == "hello");
  CHECK(code_of([&] { set.end(JsonObject(R"({"session_id":"s1"})")); }) == Errc::not_found);
}

TEST_CASE("uploads: bad starts name their field; an unknown service is not_found") {
  Fixture f;
  detail::UploadSet set(f.uploads(4, 1 << 20));
  CHECK(field_of([&] { set.start("a", JsonObject(R"({"service_id":1})")); }) == "session_id");
  CHECK(code_of([&] {
          set.start("a", JsonObject(R"({"session_id":"x","service_id":999,"file_name":"a","file_size":1})"));
        }) == Errc::not_found);
  CHECK(field_of([&] {
          set.start("a", JsonObject(R"({"session_id":"x","service_id":)" + std::to_string(f.service_id) +
                                    R"(,"file_name":"../etc","file_size":1})"));
        }) == "file_name");
  CHECK(field_of([&] { set.start("a", JsonObject(f.start_json("x", 64LL * 1024 * 1024 + 1))); }) == "file_size");
}

TEST_CASE("uploads: the per-user quota spans connections and is given back when an upload goes") {
  Fixture f;
  auto up = f.uploads(2, 100);
  auto a = std::make_unique<detail::UploadSet>(up);
  detail::UploadSet b(up);
  a->start("alice", JsonObject(f.start_json("1", 10)));
  b.start("alice", JsonObject(f.start_json("2", 10)));
  CHECK(code_of([&] { b.start("alice", JsonObject(f.start_json("3", 10))); }) == Errc::resource_exhausted);
  b.start("bob", JsonObject(f.start_json("3", 100)));  // another user's quota
  b.drop("2");
  b.start("alice", JsonObject(f.start_json("4", 90)));
  CHECK(code_of([&] { b.start("alice", JsonObject(f.start_json("5", 1))); }) == Errc::resource_exhausted);
  a.reset();  // a closed connection gives back its uploads
  CHECK_NOTHROW(b.start("alice", JsonObject(f.start_json("5", 10))));
  // Partial files of dropped uploads are removed.
  std::size_t partial = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(f.dir.path / "data" / "uploads" / ".partial")) ++partial;
  CHECK(partial == 3);  // bob's 3, alice's 4 and 5
}

TEST_CASE("service search: words in name or description, type, any case; limit bounds the list, not the total") {
  Fixture f;
  ServiceCreate c;
  c.type = "relay";
  c.name = "Relay Two";
  f.cluster->workflows().create_service(c);
  detail::ServiceSearch q;
  q.query = "RELAY";
  auto found = detail::search_services(f.cluster->workflows(), q);
  CHECK(found.query == "relay");
  CHECK(found.total == 2);
  q.query = "packets";
  CHECK(detail::search_services(f.cluster->workflows(), q).total == 1);
  q.query = "";
  q.service_type = "DOCKER";
  CHECK(detail::search_services(f.cluster->workflows(), q).total == 0);
  q.service_type = "";
  q.limit = 1;
  found = detail::search_services(f.cluster->workflows(), q);
  CHECK(found.services.size() == 1);
  CHECK(found.total == 2);
  q.limit = 0;
  CHECK(field_of([&] { detail::search_services(f.cluster->workflows(), q); }) == "limit");
}
