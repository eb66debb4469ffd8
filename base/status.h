// Status helpers shared by every berth module: errors cross module boundaries as
// absl::Status / absl::StatusOr<T>; these macros keep call sites short.
#pragma once

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace berth {

// Returns a Status for errno `err` whose message is "<what>: <strerror>". The code follows
// absl::ErrnoToStatus (ENOENT -> NotFound, EEXIST -> AlreadyExists, ...).
absl::Status ErrnoStatus(int err, absl::string_view what);

// Returns `s` with "<context>: " prepended to its message; the code is kept. OK stays OK.
absl::Status Annotate(const absl::Status& s, absl::string_view context);

}  // namespace berth

#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status berth_status_ = (expr);         \
    if (!berth_status_.ok()) return berth_status_; \
  } while (0)

// `lhs` = value of `rexpr` (a StatusOr<T>), or returns its error.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(BERTH_CONCAT_(berth_statusor_, __LINE__), lhs, rexpr)
// `lhs` may be a declaration (`auto x`), so it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                           \
  if (!tmp.ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
