#include "kubelet/service_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace berth::kubelet {
namespace {

Json Service(const std::string& ns, const std::string& name, const std::string& ip, Json ports) {
  return {{"metadata", {{"namespace", ns}, {"name", name}}},
          {"spec", {{"clusterIP", ip}, {"ports", std::move(ports)}}}};
}

// The upstream variables (envvars FromServices), names and values, in order.
TEST(ServiceEnvTest, VariablesOfOneService) {
  Json svc = Service("shop", "redis-primary", "10.96.0.20",
                     Json::array({{{"name", "redis"}, {"port", 6379}, {"protocol", "TCP"}},
                                  {{"name", "metrics-http"}, {"port", 9121}},
                                  {{"port", 5353}, {"protocol", "UDP"}}}));
  std::vector<std::pair<std::string, std::string>> want = {
      {"REDIS_PRIMARY_SERVICE_HOST", "10.96.0.20"},
      {"REDIS_PRIMARY_SERVICE_PORT", "6379"},
      {"REDIS_PRIMARY_SERVICE_PORT_REDIS", "6379"},
      {"REDIS_PRIMARY_SERVICE_PORT_METRICS_HTTP", "9121"},
      {"REDIS_PRIMARY_PORT", "tcp://10.96.0.20:6379"},
      {"REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.96.0.20:6379"},
      {"REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"},
      {"REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"},
      {"REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.96.0.20"},
      {"REDIS_PRIMARY_PORT_9121_TCP", "tcp://10.96.0.20:9121"},
      {"REDIS_PRIMARY_PORT_9121_TCP_PROTO", "tcp"},
      {"REDIS_PRIMARY_PORT_9121_TCP_PORT", "9121"},
      {"REDIS_PRIMARY_PORT_9121_TCP_ADDR", "10.96.0.20"},
      {"REDIS_PRIMARY_PORT_5353_UDP", "udp://10.96.0.20:5353"},
      {"REDIS_PRIMARY_PORT_5353_UDP_PROTO", "udp"},
      {"REDIS_PRIMARY_PORT_5353_UDP_PORT", "5353"},
      {"REDIS_PRIMARY_PORT_5353_UDP_ADDR", "10.96.0.20"}};
  EXPECT_EQ(ServiceEnvVars(svc), want);
  // IPv6: the URL brackets the address (net.JoinHostPort), _ADDR does not.
  auto v6 = ServiceEnvVars(Service("shop", "web", "fd00::10", Json::array({{{"port", 80}}})));
  ASSERT_GE(v6.size(), 3u);
  EXPECT_EQ(v6[2], std::make_pair(std::string("WEB_PORT"), std::string("tcp://[fd00::10]:80")));
  EXPECT_EQ(v6.back(),
            std::make_pair(std::string("WEB_PORT_80_TCP_ADDR"), std::string("fd00::10")));
  // Headless and IP-less services have none.
  EXPECT_TRUE(ServiceEnvVars(Service("shop", "h", "None", Json::array({{{"port", 80}}}))).empty());
  EXPECT_TRUE(ServiceEnvVars(Service("shop", "e", "", Json::array({{{"port", 80}}}))).empty());
}

// kubelet getServiceEnvVarMap: the master service always, the pod namespace's services unless
// enableServiceLinks is false (overriding a master of the same name); nothing before the first
// list.
TEST(ServiceEnvTest, ServicesOfThePodsNamespaceAndTheMaster) {
  ServiceEnv env;
  EXPECT_EQ(env.For("shop", true).status().code(), absl::StatusCode::kUnavailable);
  env.Upsert(Service("default", "kubernetes", "10.96.0.1",
                     Json::array({{{"name", "https"}, {"port", 443}}})));
  env.Upsert(Service("default", "other", "10.96.0.2", Json::array({{{"port", 80}}})));
  env.Upsert(Service("shop", "db", "10.96.0.30", Json::array({{{"port", 5432}}})));
  env.Upsert(Service("elsewhere", "cache", "10.96.0.40", Json::array({{{"port", 11211}}})));
  env.MarkSynced();

  auto shop = env.For("shop", true);
  ASSERT_TRUE(shop.ok()) << shop.status();
  EXPECT_EQ(shop->at("KUBERNETES_SERVICE_HOST"), "10.96.0.1");
  EXPECT_EQ(shop->at("KUBERNETES_SERVICE_PORT"), "443");
  EXPECT_EQ(shop->at("KUBERNETES_SERVICE_PORT_HTTPS"), "443");
  EXPECT_EQ(shop->at("DB_SERVICE_HOST"), "10.96.0.30");
  EXPECT_EQ(shop->count("OTHER_SERVICE_HOST"), 0u);  // default's non-master services: not here
  EXPECT_EQ(shop->count("CACHE_SERVICE_HOST"), 0u);

  auto no_links = env.For("shop", false);
  ASSERT_TRUE(no_links.ok());
  EXPECT_EQ(no_links->at("KUBERNETES_SERVICE_HOST"), "10.96.0.1");
  EXPECT_EQ(no_links->count("DB_SERVICE_HOST"), 0u);

  auto in_default = env.For("default", true);
  ASSERT_TRUE(in_default.ok());
  EXPECT_EQ(in_default->at("OTHER_SERVICE_HOST"), "10.96.0.2");

  // A "kubernetes" service of the pod's own namespace wins over the master.
  env.Upsert(Service("shop", "kubernetes", "10.96.0.99", Json::array({{{"port", 6443}}})));
  EXPECT_EQ(env.For("shop", true)->at("KUBERNETES_SERVICE_HOST"), "10.96.0.99");
  EXPECT_EQ(env.For("shop", false)->at("KUBERNETES_SERVICE_HOST"), "10.96.0.1");

  // Updates and deletions through the watch handlers.
  ListWatchHandlers h = env.Handlers();
  h.on_update(Json(), Service("shop", "db", "10.96.0.31", Json::array({{{"port", 5432}}})));
  EXPECT_EQ(env.For("shop", true)->at("DB_SERVICE_HOST"), "10.96.0.31");
  h.on_delete(Service("shop", "db", "10.96.0.31", Json::array()));
  EXPECT_EQ(env.For("shop", true)->count("DB_SERVICE_HOST"), 0u);
  // Turned headless: its variables go.
  h.on_update(Json(), Service("default", "other", "None", Json::array({{{"port", 80}}})));
  EXPECT_EQ(env.For("default", true)->count("OTHER_SERVICE_HOST"), 0u);
}

}  // namespace
}  // namespace berth::kubelet
