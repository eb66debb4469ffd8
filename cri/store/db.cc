#include "cri/store/db.h"

#include <pthread.h>

#include "absl/strings/str_cat.h"

namespace berth::cri::store {
namespace {
uint64_t Self() { return static_cast<uint64_t>(pthread_self()); }
}  // namespace

std::string AsString(const Value& v) {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return "";
}

int64_t AsInt(const Value& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  return 0;
}

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, const std::string& schema) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    if (raw) sqlite3_close(raw);
    return absl::InternalError(absl::StrCat("open database ", path, ": ", msg));
  }
  sqlite3_busy_timeout(raw, 5000);
  std::unique_ptr<Db> db(new Db(raw));
  char* err = nullptr;
  std::string init =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; " + schema;
  if (sqlite3_exec(raw, init.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("initialize database ", path, ": ", msg));
  }
  return db;
}

Db::~Db() { sqlite3_close(db_); }

absl::StatusOr<std::vector<Row>> Db::QueryLocked(const std::string& sql,
                                                 const std::vector<Value>& params) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("sqlite prepare \"", sql, "\": ", sqlite3_errmsg(db_)));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    const Value& p = params[i];
    if (std::holds_alternative<std::nullptr_t>(p))
      sqlite3_bind_null(stmt, idx);
    else if (auto* n = std::get_if<int64_t>(&p))
      sqlite3_bind_int64(stmt, idx, *n);
    else if (auto* d = std::get_if<double>(&p))
      sqlite3_bind_double(stmt, idx, *d);
    else {
      const auto& s = std::get<std::string>(p);
      sqlite3_bind_text(stmt, idx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  }
  std::vector<Row> rows;
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      std::string msg = sqlite3_errmsg(db_);
      sqlite3_finalize(stmt);
      return absl::InternalError(absl::StrCat("sqlite \"", sql, "\": ", msg));
    }
    Row row;
    int n = sqlite3_column_count(stmt);
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL:
          row.emplace_back(nullptr);
          break;
        case SQLITE_INTEGER:
          row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
          break;
        case SQLITE_FLOAT:
          row.emplace_back(sqlite3_column_double(stmt, c));
          break;
        default: {
          const char* t = reinterpret_cast<const char*>(sqlite3_column_blob(stmt, c));
          row.emplace_back(std::string(t ? t : "", sqlite3_column_bytes(stmt, c)));
        }
      }
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(stmt);
  return rows;
}

absl::StatusOr<std::vector<Row>> Db::Query(const std::string& sql,
                                           const std::vector<Value>& params) {
  if (txn_owner_.load() == Self()) return QueryLocked(sql, params);
  absl::MutexLock l(&mu_);
  return QueryLocked(sql, params);
}

absl::Status Db::Exec(const std::string& sql, const std::vector<Value>& params) {
  return Query(sql, params).status();
}

absl::Status Db::Transaction(const std::function<absl::Status()>& fn) {
  absl::MutexLock l(&mu_);
  auto begin = QueryLocked("BEGIN IMMEDIATE", {});
  if (!begin.ok()) return begin.status();
  txn_owner_.store(Self());
  absl::Status s = fn();
  txn_owner_.store(0);
  if (!s.ok()) {
    (void)QueryLocked("ROLLBACK", {});
    return s;
  }
  auto commit = QueryLocked("COMMIT", {});
  if (!commit.ok()) {
    (void)QueryLocked("ROLLBACK", {});
    return commit.status();
  }
  return absl::OkStatus();
}

}  // namespace berth::cri::store
