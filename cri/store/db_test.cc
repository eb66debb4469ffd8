#include "cri/store/db.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "base/file.h"

namespace berth::cri::store {
namespace {

TEST(DbTest, QueryAndRollback) {
  char tmpl[] = "/tmp/berth_db_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto db =
      Db::Open(dir + "/meta.db", "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER);");
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES (?1, ?2)", {std::string("a"), int64_t{1}}).ok());
  absl::Status s = (*db)->Transaction([&]() -> absl::Status {
    auto st = (*db)->Exec("INSERT INTO t VALUES ('b', 2)");
    if (!st.ok()) return st;
    return absl::AbortedError("give up");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  auto rows = (*db)->Query("SELECT k, v FROM t ORDER BY k");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(AsString((*rows)[0][0]), "a");
  EXPECT_EQ(AsInt((*rows)[0][1]), 1);
  EXPECT_FALSE((*db)->Exec("INSERT INTO t VALUES ('a', 3)").ok());
  ASSERT_TRUE(RemoveAll(dir).ok());
}

}  // namespace
}  // namespace berth::cri::store
