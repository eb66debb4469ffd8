// A thin RAII wrapper over SQLite (Debian libsqlite3) for berth's metadata: one database file
// in WAL mode, prepared statements with bound parameters, and transactions.
// Thread safety: a Db may be used from many threads; each call takes the Db's mutex, and
// Transaction() holds it for the whole callback, so one state change is one transaction.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace berth::cri::store {

// A bound parameter or a column value.
using Value = std::variant<std::nullptr_t, int64_t, double, std::string>;
// One result row, columns in SELECT order.
using Row = std::vector<Value>;

// Column accessors: empty string / 0 for NULL.
std::string AsString(const Value& v);
int64_t AsInt(const Value& v);

class Db {
 public:
  // Opens (creating if needed) the database at `path`, enables WAL and foreign keys, and runs
  // `schema` (idempotent DDL such as CREATE TABLE IF NOT EXISTS). Errors: Internal with
  // SQLite's message and the path.
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path,
                                                  const std::string& schema);
  ~Db();

  // Runs one statement with `params` bound to ?1, ?2, ...; returns the rows it produced.
  absl::StatusOr<std::vector<Row>> Query(const std::string& sql,
                                         const std::vector<Value>& params = {});
  // Runs one statement that returns no rows.
  absl::Status Exec(const std::string& sql, const std::vector<Value>& params = {});

  // Runs `fn` inside BEGIN IMMEDIATE ... COMMIT; rolls back when `fn` returns an error. Query
  // and Exec called on this Db from inside `fn` (same thread) join the transaction.
  absl::Status Transaction(const std::function<absl::Status()>& fn);

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  absl::StatusOr<std::vector<Row>> QueryLocked(const std::string& sql,
                                               const std::vector<Value>& params);

  absl::Mutex mu_;
  sqlite3* db_;
  // Thread currently inside Transaction(), so its nested calls do not re-lock.
  std::atomic<uint64_t> txn_owner_{0};
};

}  // namespace berth::cri::store
