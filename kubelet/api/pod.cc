#include "kubelet/api/pod.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace berth::kubelet::api {
namespace {

const char* TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    default:
      return "value";
  }
}

absl::Status FieldError(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

absl::Status WrongType(const std::string& path, const char* want, const Json& got) {
  return FieldError(path, absl::StrCat("want ", want, ", got ", TypeName(got)));
}

// A JSON object being read, with the field path of the object for error messages. Absent
// and null members leave the output untouched (the default stays).
class Obj {
 public:
  // `j` may be null (an absent object): every member is then absent.
  Obj(const Json* j, std::string path) : j_(j), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string Path(const char* key) const {
    return path_.empty() ? key : absl::StrCat(path_, ".", key);
  }

  // The member `key`, or nullptr when absent or null.
  const Json* Get(const char* key) const {
    if (j_ == nullptr) return nullptr;
    auto it = j_->find(key);
    if (it == j_->end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::Status String(const char* key, std::string* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return WrongType(Path(key), "a string", *v);
    *out = v->get<std::string>();
    return absl::OkStatus();
  }
  absl::Status String(const char* key, std::optional<std::string>* out) const {
    if (Get(key) == nullptr) return absl::OkStatus();
    std::string s;
    if (absl::Status st = String(key, &s); !st.ok()) return st;
    *out = std::move(s);
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, bool* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) return WrongType(Path(key), "a boolean", *v);
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, std::optional<bool>* out) const {
    if (Get(key) == nullptr) return absl::OkStatus();
    bool b = false;
    if (absl::Status st = Bool(key, &b); !st.ok()) return st;
    *out = b;
    return absl::OkStatus();
  }
  template <typename Int>
  absl::Status Integer(const char* key, Int* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    return ToInteger(*v, Path(key), out);
  }
  template <typename Int>
  absl::Status Integer(const char* key, std::optional<Int>* out) const {
    if (Get(key) == nullptr) return absl::OkStatus();
    Int i = 0;
    if (absl::Status st = Integer(key, &i); !st.ok()) return st;
    *out = i;
    return absl::OkStatus();
  }
  absl::Status Time(const char* key, std::optional<absl::Time>* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return WrongType(Path(key), "an RFC 3339 time string", *v);
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, v->get<std::string>(), &t, &err)) {
      return FieldError(Path(key),
                        absl::StrCat("not an RFC 3339 time: \"", v->get<std::string>(), "\""));
    }
    *out = t;
    return absl::OkStatus();
  }
  absl::Status StringList(const char* key, std::vector<std::string>* out) const {
    return Array(key, [&](const Json& e, const std::string& path) -> absl::Status {
      if (!e.is_string()) return WrongType(path, "a string", e);
      out->push_back(e.get<std::string>());
      return absl::OkStatus();
    });
  }
  absl::Status StringMap(const char* key, std::map<std::string, std::string>* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_object()) return WrongType(Path(key), "an object", *v);
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it->is_string())
        return WrongType(absl::StrCat(Path(key), "[", it.key(), "]"), "a string", *it);
      (*out)[it.key()] = it->get<std::string>();
    }
    return absl::OkStatus();
  }
  // A resource.Quantity: a string, or (as the API server also accepts) a number.
  absl::Status Quantity(const char* key, std::optional<berth::Quantity>* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    absl::StatusOr<berth::Quantity> q = ToQuantity(*v, Path(key));
    if (!q.ok()) return q.status();
    *out = *q;
    return absl::OkStatus();
  }
  absl::Status Resources(const char* key, ResourceList* out) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_object()) return WrongType(Path(key), "an object", *v);
    for (auto it = v->begin(); it != v->end(); ++it) {
      absl::StatusOr<berth::Quantity> q =
          ToQuantity(*it, absl::StrCat(Path(key), "[", it.key(), "]"));
      if (!q.ok()) return q.status();
      (*out)[it.key()] = q->RoundedUp(-3);  // SetDefaults_ResourceList
    }
    return absl::OkStatus();
  }
  // The member `key` as an object (absent: an Obj over nothing). Error when not an object.
  absl::StatusOr<Obj> Child(const char* key) const {
    const Json* v = Get(key);
    if (v != nullptr && !v->is_object()) return WrongType(Path(key), "an object", *v);
    return Obj(v, Path(key));
  }
  // Calls `each(element, path)` for every element of the array member `key`.
  template <typename F>
  absl::Status Array(const char* key, F each) const {
    const Json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) return WrongType(Path(key), "an array", *v);
    for (size_t i = 0; i < v->size(); ++i) {
      if (absl::Status st = each((*v)[i], absl::StrCat(Path(key), "[", i, "]")); !st.ok())
        return st;
    }
    return absl::OkStatus();
  }
  // Like Array, for arrays of objects.
  template <typename F>
  absl::Status Objects(const char* key, F each) const {
    return Array(key, [&](const Json& e, const std::string& path) -> absl::Status {
      if (!e.is_object()) return WrongType(path, "an object", e);
      return each(Obj(&e, path));
    });
  }
  bool Has(const char* key) const { return Get(key) != nullptr; }
  const Json* json() const { return j_; }

  template <typename Int>
  static absl::Status ToInteger(const Json& v, const std::string& path, Int* out) {
    if (v.is_number_integer()) {
      int64_t i = v.get<int64_t>();
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return FieldError(path, "integer out of range");
      }
      if (i < std::numeric_limits<Int>::min() || i > std::numeric_limits<Int>::max()) {
        return FieldError(path, absl::StrCat("integer ", i, " out of range"));
      }
      *out = static_cast<Int>(i);
      return absl::OkStatus();
    }
    if (v.is_number_float()) {
      double d = v.get<double>();
      // Go's decoder takes 3.0 for an int field but not 3.5.
      if (d == static_cast<double>(static_cast<int64_t>(d)) &&
          d >= static_cast<double>(std::numeric_limits<Int>::min()) &&
          d <= static_cast<double>(std::numeric_limits<Int>::max())) {
        *out = static_cast<Int>(d);
        return absl::OkStatus();
      }
      return FieldError(path, absl::StrCat("want an integer, got ", v.dump()));
    }
    return WrongType(path, "an integer", v);
  }

  static absl::StatusOr<berth::Quantity> ToQuantity(const Json& v, const std::string& path) {
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_number()) {
      text = v.dump();
    } else {
      return WrongType(path, "a quantity string", v);
    }
    absl::StatusOr<berth::Quantity> q = berth::Quantity::Parse(text);
    if (!q.ok()) return FieldError(path, q.status().message());
    return q;
  }

 private:
  const Json* j_;
  std::string path_;
};

#define RETURN_IF_ERR(expr)            \
  do {                                 \
    ::absl::Status status_ = (expr);   \
    if (!status_.ok()) return status_; \
  } while (0)

#define CHILD_OR_RETURN(var, parent, key)             \
  absl::StatusOr<Obj> var##_or = (parent).Child(key); \
  if (!var##_or.ok()) return var##_or.status();       \
  const Obj& var = *var##_or

absl::Status ParseIntOrString(const Obj& o, const char* key, IntOrString* out) {
  const Json* v = o.Get(key);
  if (v == nullptr) return absl::OkStatus();
  if (v->is_string()) {
    out->is_int = false;
    out->str_value = v->get<std::string>();
    return absl::OkStatus();
  }
  out->is_int = true;
  return Obj::ToInteger(*v, o.Path(key), &out->int_value);
}

absl::Status ParseMeta(const Obj& o, ObjectMeta* m) {
  RETURN_IF_ERR(o.String("name", &m->name));
  RETURN_IF_ERR(o.String("namespace", &m->namespace_));
  RETURN_IF_ERR(o.String("uid", &m->uid));
  RETURN_IF_ERR(o.String("resourceVersion", &m->resource_version));
  RETURN_IF_ERR(o.StringMap("labels", &m->labels));
  RETURN_IF_ERR(o.StringMap("annotations", &m->annotations));
  RETURN_IF_ERR(o.Time("creationTimestamp", &m->creation_timestamp));
  RETURN_IF_ERR(o.Time("deletionTimestamp", &m->deletion_timestamp));
  RETURN_IF_ERR(o.Integer("deletionGracePeriodSeconds", &m->deletion_grace_period_seconds));
  return o.Objects("ownerReferences", [&](const Obj& r) -> absl::Status {
    OwnerReference ref;
    RETURN_IF_ERR(r.String("apiVersion", &ref.api_version));
    RETURN_IF_ERR(r.String("kind", &ref.kind));
    RETURN_IF_ERR(r.String("name", &ref.name));
    RETURN_IF_ERR(r.String("uid", &ref.uid));
    RETURN_IF_ERR(r.Bool("controller", &ref.controller));
    m->owner_references.push_back(std::move(ref));
    return absl::OkStatus();
  });
}

absl::Status ParseFieldRef(const Obj& o, ObjectFieldSelector* f) {
  RETURN_IF_ERR(o.String("apiVersion", &f->api_version));
  if (f->api_version.empty()) f->api_version = "v1";  // SetDefaults_ObjectFieldSelector
  return o.String("fieldPath", &f->field_path);
}

absl::Status ParseResourceFieldRef(const Obj& o, ResourceFieldSelector* r) {
  RETURN_IF_ERR(o.String("containerName", &r->container_name));
  RETURN_IF_ERR(o.String("resource", &r->resource));
  std::optional<Quantity> divisor;
  RETURN_IF_ERR(o.Quantity("divisor", &divisor));
  if (divisor && divisor->Sign() < 0) return FieldError(o.Path("divisor"), "must be positive");
  // Absent or zero: 1 (ExtractContainerResourceValue).
  r->divisor = divisor && !divisor->IsZero() ? *divisor : Quantity::FromScaled(1, 0);
  return absl::OkStatus();
}

absl::Status ParseKeySelector(const Obj& o, KeySelector* k) {
  RETURN_IF_ERR(o.String("name", &k->name));
  RETURN_IF_ERR(o.String("key", &k->key));
  return o.Bool("optional", &k->optional);
}

absl::Status ParseLocalRef(const Obj& o, LocalRef* r) {
  RETURN_IF_ERR(o.String("name", &r->name));
  return o.Bool("optional", &r->optional);
}

absl::Status ParseHttpGet(const Obj& o, HttpGetAction* h) {
  RETURN_IF_ERR(o.String("path", &h->path));
  if (h->path.empty()) h->path = "/";
  RETURN_IF_ERR(ParseIntOrString(o, "port", &h->port));
  RETURN_IF_ERR(o.String("host", &h->host));
  RETURN_IF_ERR(o.String("scheme", &h->scheme));
  if (h->scheme.empty()) h->scheme = "HTTP";
  return o.Objects("httpHeaders", [&](const Obj& ho) -> absl::Status {
    HttpHeader hh;
    RETURN_IF_ERR(ho.String("name", &hh.name));
    RETURN_IF_ERR(ho.String("value", &hh.value));
    h->http_headers.push_back(std::move(hh));
    return absl::OkStatus();
  });
}

absl::Status ParseExec(const Obj& o, ExecAction* e) { return o.StringList("command", &e->command); }

absl::Status ParseTcp(const Obj& o, TcpSocketAction* t) {
  RETURN_IF_ERR(ParseIntOrString(o, "port", &t->port));
  return o.String("host", &t->host);
}

// Parses the optional object member `key` of `o` with `parse` into `*out`.
template <typename T, typename F>
absl::Status Optional(const Obj& o, const char* key, std::optional<T>* out, F parse) {
  if (!o.Has(key)) return absl::OkStatus();
  CHILD_OR_RETURN(child, o, key);
  T value;
  RETURN_IF_ERR(parse(child, &value));
  *out = std::move(value);
  return absl::OkStatus();
}

absl::Status ParseHandler(const Obj& o, LifecycleHandler* h) {
  RETURN_IF_ERR(Optional(o, "exec", &h->exec, ParseExec));
  RETURN_IF_ERR(Optional(o, "httpGet", &h->http_get, ParseHttpGet));
  RETURN_IF_ERR(Optional(o, "tcpSocket", &h->tcp_socket, ParseTcp));
  return Optional(o, "sleep", &h->sleep,
                  [](const Obj& s, SleepAction* a) { return s.Integer("seconds", &a->seconds); });
}

absl::Status ParseProbe(const Obj& o, Probe* p) {
  RETURN_IF_ERR(Optional(o, "exec", &p->exec, ParseExec));
  RETURN_IF_ERR(Optional(o, "httpGet", &p->http_get, ParseHttpGet));
  RETURN_IF_ERR(Optional(o, "tcpSocket", &p->tcp_socket, ParseTcp));
  RETURN_IF_ERR(Optional(o, "grpc", &p->grpc, [](const Obj& g, GrpcAction* a) -> absl::Status {
    RETURN_IF_ERR(g.Integer("port", &a->port));
    return g.String("service", &a->service);
  }));
  RETURN_IF_ERR(o.Integer("initialDelaySeconds", &p->initial_delay_seconds));
  RETURN_IF_ERR(o.Integer("timeoutSeconds", &p->timeout_seconds));
  RETURN_IF_ERR(o.Integer("periodSeconds", &p->period_seconds));
  RETURN_IF_ERR(o.Integer("successThreshold", &p->success_threshold));
  RETURN_IF_ERR(o.Integer("failureThreshold", &p->failure_threshold));
  RETURN_IF_ERR(o.Integer("terminationGracePeriodSeconds", &p->termination_grace_period_seconds));
  // SetDefaults_Probe: zero means unset.
  if (p->timeout_seconds == 0) p->timeout_seconds = 1;
  if (p->period_seconds == 0) p->period_seconds = 10;
  if (p->success_threshold == 0) p->success_threshold = 1;
  if (p->failure_threshold == 0) p->failure_threshold = 3;
  return absl::OkStatus();
}

absl::Status ParseSeccomp(const Obj& o, SeccompProfile* s) {
  RETURN_IF_ERR(o.String("type", &s->type));
  return o.String("localhostProfile", &s->localhost_profile);
}

absl::Status ParseSecurityContext(const Obj& o, SecurityContext* sc) {
  RETURN_IF_ERR(o.Bool("privileged", &sc->privileged));
  RETURN_IF_ERR(o.Bool("runAsNonRoot", &sc->run_as_non_root));
  RETURN_IF_ERR(o.Bool("readOnlyRootFilesystem", &sc->read_only_root_filesystem));
  RETURN_IF_ERR(o.Bool("allowPrivilegeEscalation", &sc->allow_privilege_escalation));
  RETURN_IF_ERR(o.Integer("runAsUser", &sc->run_as_user));
  RETURN_IF_ERR(o.Integer("runAsGroup", &sc->run_as_group));
  RETURN_IF_ERR(o.String("procMount", &sc->proc_mount));
  RETURN_IF_ERR(Optional(o, "capabilities", &sc->capabilities,
                         [](const Obj& c, Capabilities* caps) -> absl::Status {
                           RETURN_IF_ERR(c.StringList("add", &caps->add));
                           return c.StringList("drop", &caps->drop);
                         }));
  return Optional(o, "seccompProfile", &sc->seccomp_profile, ParseSeccomp);
}

absl::Status ParsePodSecurityContext(const Obj& o, PodSecurityContext* sc) {
  RETURN_IF_ERR(o.Integer("runAsUser", &sc->run_as_user));
  RETURN_IF_ERR(o.Integer("runAsGroup", &sc->run_as_group));
  RETURN_IF_ERR(o.Bool("runAsNonRoot", &sc->run_as_non_root));
  RETURN_IF_ERR(
      o.Array("supplementalGroups", [&](const Json& g, const std::string& path) -> absl::Status {
        int64_t v = 0;
        RETURN_IF_ERR(Obj::ToInteger(g, path, &v));
        sc->supplemental_groups.push_back(v);
        return absl::OkStatus();
      }));
  RETURN_IF_ERR(o.Integer("fsGroup", &sc->fs_group));
  RETURN_IF_ERR(o.String("fsGroupChangePolicy", &sc->fs_group_change_policy));
  RETURN_IF_ERR(o.Objects("sysctls", [&](const Obj& s) -> absl::Status {
    Sysctl sy;
    RETURN_IF_ERR(s.String("name", &sy.name));
    RETURN_IF_ERR(s.String("value", &sy.value));
    sc->sysctls.push_back(std::move(sy));
    return absl::OkStatus();
  }));
  return Optional(o, "seccompProfile", &sc->seccomp_profile, ParseSeccomp);
}

// `defaults_requests`: init and regular containers get requests from limits (SetDefaults_Pod);
// `host_network`: host ports default to container ports.
absl::Status ParseContainer(const Obj& o, bool defaults_requests, bool host_network, Container* c) {
  c->raw = *o.json();
  RETURN_IF_ERR(o.String("name", &c->name));
  RETURN_IF_ERR(o.String("image", &c->image));
  RETURN_IF_ERR(o.StringList("command", &c->command));
  RETURN_IF_ERR(o.StringList("args", &c->args));
  RETURN_IF_ERR(o.String("workingDir", &c->working_dir));
  RETURN_IF_ERR(o.Objects("ports", [&](const Obj& p) -> absl::Status {
    ContainerPort port;
    RETURN_IF_ERR(p.String("name", &port.name));
    RETURN_IF_ERR(p.Integer("containerPort", &port.container_port));
    RETURN_IF_ERR(p.Integer("hostPort", &port.host_port));
    RETURN_IF_ERR(p.String("protocol", &port.protocol));
    if (port.protocol.empty()) port.protocol = "TCP";
    RETURN_IF_ERR(p.String("hostIP", &port.host_ip));
    if (host_network && port.host_port == 0) port.host_port = port.container_port;
    c->ports.push_back(std::move(port));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.Objects("envFrom", [&](const Obj& e) -> absl::Status {
    EnvFromSource from;
    RETURN_IF_ERR(e.String("prefix", &from.prefix));
    RETURN_IF_ERR(Optional(e, "configMapRef", &from.config_map_ref, ParseLocalRef));
    RETURN_IF_ERR(Optional(e, "secretRef", &from.secret_ref, ParseLocalRef));
    c->env_from.push_back(std::move(from));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.Objects("env", [&](const Obj& e) -> absl::Status {
    EnvVar var;
    RETURN_IF_ERR(e.String("name", &var.name));
    RETURN_IF_ERR(e.String("value", &var.value));
    RETURN_IF_ERR(Optional(
        e, "valueFrom", &var.value_from, [](const Obj& vf, EnvVarSource* src) -> absl::Status {
          RETURN_IF_ERR(Optional(vf, "fieldRef", &src->field_ref, ParseFieldRef));
          RETURN_IF_ERR(
              Optional(vf, "resourceFieldRef", &src->resource_field_ref, ParseResourceFieldRef));
          RETURN_IF_ERR(
              Optional(vf, "configMapKeyRef", &src->config_map_key_ref, ParseKeySelector));
          return Optional(vf, "secretKeyRef", &src->secret_key_ref, ParseKeySelector);
        }));
    c->env.push_back(std::move(var));
    return absl::OkStatus();
  }));
  {
    CHILD_OR_RETURN(res, o, "resources");
    RETURN_IF_ERR(res.Resources("limits", &c->resources.limits));
    RETURN_IF_ERR(res.Resources("requests", &c->resources.requests));
    if (defaults_requests) {
      for (const auto& [name, q] : c->resources.limits) c->resources.requests.emplace(name, q);
    }
  }
  RETURN_IF_ERR(o.Objects("volumeMounts", [&](const Obj& m) -> absl::Status {
    VolumeMount vm;
    RETURN_IF_ERR(m.String("name", &vm.name));
    RETURN_IF_ERR(m.String("mountPath", &vm.mount_path));
    RETURN_IF_ERR(m.Bool("readOnly", &vm.read_only));
    RETURN_IF_ERR(m.String("subPath", &vm.sub_path));
    RETURN_IF_ERR(m.String("subPathExpr", &vm.sub_path_expr));
    RETURN_IF_ERR(m.String("mountPropagation", &vm.mount_propagation));
    c->volume_mounts.push_back(std::move(vm));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.Objects("volumeDevices", [&](const Obj& d) -> absl::Status {
    VolumeDevice vd;
    RETURN_IF_ERR(d.String("name", &vd.name));
    RETURN_IF_ERR(d.String("devicePath", &vd.device_path));
    c->volume_devices.push_back(std::move(vd));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(Optional(o, "livenessProbe", &c->liveness_probe, ParseProbe));
  RETURN_IF_ERR(Optional(o, "readinessProbe", &c->readiness_probe, ParseProbe));
  RETURN_IF_ERR(Optional(o, "startupProbe", &c->startup_probe, ParseProbe));
  RETURN_IF_ERR(
      Optional(o, "lifecycle", &c->lifecycle, [](const Obj& l, Lifecycle* lc) -> absl::Status {
        RETURN_IF_ERR(Optional(l, "postStart", &lc->post_start, ParseHandler));
        return Optional(l, "preStop", &lc->pre_stop, ParseHandler);
      }));
  RETURN_IF_ERR(o.String("terminationMessagePath", &c->termination_message_path));
  if (c->termination_message_path.empty()) c->termination_message_path = "/dev/termination-log";
  RETURN_IF_ERR(o.String("terminationMessagePolicy", &c->termination_message_policy));
  if (c->termination_message_policy.empty()) c->termination_message_policy = "File";
  RETURN_IF_ERR(o.String("imagePullPolicy", &c->image_pull_policy));
  if (c->image_pull_policy.empty()) c->image_pull_policy = DefaultImagePullPolicy(c->image);
  RETURN_IF_ERR(Optional(o, "securityContext", &c->security_context, ParseSecurityContext));
  RETURN_IF_ERR(o.Bool("stdin", &c->stdin));
  RETURN_IF_ERR(o.Bool("stdinOnce", &c->stdin_once));
  RETURN_IF_ERR(o.Bool("tty", &c->tty));
  RETURN_IF_ERR(o.String("restartPolicy", &c->restart_policy));
  return o.String("targetContainerName", &c->target_container_name);
}

absl::Status ParseItems(const Obj& o, std::vector<KeyToPath>* items) {
  return o.Objects("items", [&](const Obj& i) -> absl::Status {
    KeyToPath k;
    RETURN_IF_ERR(i.String("key", &k.key));
    RETURN_IF_ERR(i.String("path", &k.path));
    RETURN_IF_ERR(i.Integer("mode", &k.mode));
    items->push_back(std::move(k));
    return absl::OkStatus();
  });
}

absl::Status ParseSecret(const Obj& o, SecretSource* s) {
  RETURN_IF_ERR(o.String("secretName", &s->secret_name));
  RETURN_IF_ERR(o.String("name", &s->secret_name));  // a projected secret names it "name"
  RETURN_IF_ERR(ParseItems(o, &s->items));
  RETURN_IF_ERR(o.Integer("defaultMode", &s->default_mode));
  return o.Bool("optional", &s->optional);
}

absl::Status ParseConfigMap(const Obj& o, ConfigMapSource* s) {
  RETURN_IF_ERR(o.String("name", &s->name));
  RETURN_IF_ERR(ParseItems(o, &s->items));
  RETURN_IF_ERR(o.Integer("defaultMode", &s->default_mode));
  return o.Bool("optional", &s->optional);
}

absl::Status ParseDownwardApi(const Obj& o, DownwardApiSource* s) {
  RETURN_IF_ERR(o.Objects("items", [&](const Obj& i) -> absl::Status {
    DownwardApiFile f;
    RETURN_IF_ERR(i.String("path", &f.path));
    RETURN_IF_ERR(Optional(i, "fieldRef", &f.field_ref, ParseFieldRef));
    RETURN_IF_ERR(Optional(i, "resourceFieldRef", &f.resource_field_ref, ParseResourceFieldRef));
    RETURN_IF_ERR(i.Integer("mode", &f.mode));
    s->items.push_back(std::move(f));
    return absl::OkStatus();
  }));
  return o.Integer("defaultMode", &s->default_mode);
}

absl::Status ParseVolume(const Obj& o, Volume* v) {
  v->raw = *o.json();
  RETURN_IF_ERR(o.String("name", &v->name));
  RETURN_IF_ERR(
      Optional(o, "hostPath", &v->host_path, [](const Obj& h, HostPathSource* s) -> absl::Status {
        RETURN_IF_ERR(h.String("path", &s->path));
        return h.String("type", &s->type);
      }));
  RETURN_IF_ERR(
      Optional(o, "emptyDir", &v->empty_dir, [](const Obj& e, EmptyDirSource* s) -> absl::Status {
        RETURN_IF_ERR(e.String("medium", &s->medium));
        return e.Quantity("sizeLimit", &s->size_limit);
      }));
  RETURN_IF_ERR(Optional(o, "secret", &v->secret, ParseSecret));
  RETURN_IF_ERR(Optional(o, "configMap", &v->config_map, ParseConfigMap));
  RETURN_IF_ERR(Optional(o, "downwardAPI", &v->downward_api, ParseDownwardApi));
  RETURN_IF_ERR(
      Optional(o, "projected", &v->projected, [](const Obj& p, ProjectedSource* s) -> absl::Status {
        RETURN_IF_ERR(p.Objects("sources", [&](const Obj& src) -> absl::Status {
          VolumeProjection proj;
          RETURN_IF_ERR(Optional(src, "secret", &proj.secret, ParseSecret));
          RETURN_IF_ERR(Optional(src, "configMap", &proj.config_map, ParseConfigMap));
          RETURN_IF_ERR(Optional(src, "downwardAPI", &proj.downward_api, ParseDownwardApi));
          RETURN_IF_ERR(
              Optional(src, "serviceAccountToken", &proj.service_account_token,
                       [](const Obj& t, ServiceAccountTokenProjection* sa) -> absl::Status {
                         RETURN_IF_ERR(t.String("audience", &sa->audience));
                         RETURN_IF_ERR(t.Integer("expirationSeconds", &sa->expiration_seconds));
                         return t.String("path", &sa->path);
                       }));
          s->sources.push_back(std::move(proj));
          return absl::OkStatus();
        }));
        return p.Integer("defaultMode", &s->default_mode);
      }));
  RETURN_IF_ERR(Optional(o, "persistentVolumeClaim", &v->persistent_volume_claim,
                         [](const Obj& p, PvcSource* s) -> absl::Status {
                           RETURN_IF_ERR(p.String("claimName", &s->claim_name));
                           return p.Bool("readOnly", &s->read_only);
                         }));
  if (o.Has("ephemeral")) {
    CHILD_OR_RETURN(eph, o, "ephemeral");
    (void)eph;
    v->ephemeral = true;
  }
  // SetDefaults_Volume: a volume with no source at all is an emptyDir.
  static constexpr const char* kNotSources[] = {"name"};
  bool any_source = false;
  for (auto it = o.json()->begin(); it != o.json()->end(); ++it) {
    if (it.key() != kNotSources[0] && !it->is_null()) any_source = true;
  }
  if (!any_source) v->empty_dir = EmptyDirSource{};
  return absl::OkStatus();
}

absl::Status ParseContainerStatus(const Obj& o, ContainerStatus* s) {
  auto parse_state = [](const Obj& st, ContainerState* out) -> absl::Status {
    RETURN_IF_ERR(Optional(st, "waiting", &out->waiting,
                           [](const Obj& w, ContainerStateWaiting* x) -> absl::Status {
                             RETURN_IF_ERR(w.String("reason", &x->reason));
                             return w.String("message", &x->message);
                           }));
    RETURN_IF_ERR(
        Optional(st, "running", &out->running, [](const Obj& r, ContainerStateRunning* x) {
          return r.Time("startedAt", &x->started_at);
        }));
    return Optional(st, "terminated", &out->terminated,
                    [](const Obj& t, ContainerStateTerminated* x) -> absl::Status {
                      RETURN_IF_ERR(t.Integer("exitCode", &x->exit_code));
                      RETURN_IF_ERR(t.Integer("signal", &x->signal));
                      RETURN_IF_ERR(t.String("reason", &x->reason));
                      RETURN_IF_ERR(t.String("message", &x->message));
                      RETURN_IF_ERR(t.Time("startedAt", &x->started_at));
                      RETURN_IF_ERR(t.Time("finishedAt", &x->finished_at));
                      return t.String("containerID", &x->container_id);
                    });
  };
  RETURN_IF_ERR(o.String("name", &s->name));
  {
    CHILD_OR_RETURN(state, o, "state");
    RETURN_IF_ERR(parse_state(state, &s->state));
  }
  {
    CHILD_OR_RETURN(last, o, "lastState");
    RETURN_IF_ERR(parse_state(last, &s->last_state));
  }
  RETURN_IF_ERR(o.Bool("ready", &s->ready));
  RETURN_IF_ERR(o.Integer("restartCount", &s->restart_count));
  RETURN_IF_ERR(o.String("image", &s->image));
  RETURN_IF_ERR(o.String("imageID", &s->image_id));
  RETURN_IF_ERR(o.String("containerID", &s->container_id));
  return o.Bool("started", &s->started);
}

absl::Status ParseStatus(const Obj& o, PodStatus* s) {
  RETURN_IF_ERR(o.String("phase", &s->phase));
  RETURN_IF_ERR(o.String("reason", &s->reason));
  RETURN_IF_ERR(o.String("message", &s->message));
  RETURN_IF_ERR(o.String("hostIP", &s->host_ip));
  RETURN_IF_ERR(o.String("podIP", &s->pod_ip));
  RETURN_IF_ERR(o.Objects("podIPs", [&](const Obj& ip) -> absl::Status {
    std::string v;
    RETURN_IF_ERR(ip.String("ip", &v));
    s->pod_ips.push_back(std::move(v));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.Time("startTime", &s->start_time));
  RETURN_IF_ERR(o.String("qosClass", &s->qos_class));
  RETURN_IF_ERR(o.Objects("conditions", [&](const Obj& c) -> absl::Status {
    PodCondition cond;
    RETURN_IF_ERR(c.String("type", &cond.type));
    RETURN_IF_ERR(c.String("status", &cond.status));
    RETURN_IF_ERR(c.String("reason", &cond.reason));
    RETURN_IF_ERR(c.String("message", &cond.message));
    RETURN_IF_ERR(c.Time("lastTransitionTime", &cond.last_transition_time));
    s->conditions.push_back(std::move(cond));
    return absl::OkStatus();
  }));
  for (auto [key, list] :
       {std::pair{"initContainerStatuses", &s->init_container_statuses},
        std::pair{"containerStatuses", &s->container_statuses},
        std::pair{"ephemeralContainerStatuses", &s->ephemeral_container_statuses}}) {
    RETURN_IF_ERR(o.Objects(key, [&](const Obj& cs) -> absl::Status {
      ContainerStatus st;
      RETURN_IF_ERR(ParseContainerStatus(cs, &st));
      list->push_back(std::move(st));
      return absl::OkStatus();
    }));
  }
  return absl::OkStatus();
}

absl::Status ParseSpec(const Obj& o, PodSpec* s) {
  RETURN_IF_ERR(o.Bool("hostNetwork", &s->host_network));
  RETURN_IF_ERR(o.Objects("volumes", [&](const Obj& v) -> absl::Status {
    Volume vol;
    RETURN_IF_ERR(ParseVolume(v, &vol));
    s->volumes.push_back(std::move(vol));
    return absl::OkStatus();
  }));
  for (auto [key, list, requests] :
       {std::tuple{"initContainers", &s->init_containers, true},
        std::tuple{"containers", &s->containers, true},
        std::tuple{"ephemeralContainers", &s->ephemeral_containers, false}}) {
    RETURN_IF_ERR(o.Objects(key, [&](const Obj& c) -> absl::Status {
      Container container;
      RETURN_IF_ERR(ParseContainer(c, requests, s->host_network && requests, &container));
      list->push_back(std::move(container));
      return absl::OkStatus();
    }));
  }
  RETURN_IF_ERR(o.String("restartPolicy", &s->restart_policy));
  if (s->restart_policy.empty()) s->restart_policy = "Always";
  RETURN_IF_ERR(o.Integer("terminationGracePeriodSeconds", &s->termination_grace_period_seconds));
  RETURN_IF_ERR(o.Integer("activeDeadlineSeconds", &s->active_deadline_seconds));
  RETURN_IF_ERR(o.String("dnsPolicy", &s->dns_policy));
  if (s->dns_policy.empty()) s->dns_policy = "ClusterFirst";
  RETURN_IF_ERR(o.StringMap("nodeSelector", &s->node_selector));
  RETURN_IF_ERR(o.String("serviceAccountName", &s->service_account_name));
  RETURN_IF_ERR(o.Bool("automountServiceAccountToken", &s->automount_service_account_token));
  RETURN_IF_ERR(o.String("nodeName", &s->node_name));
  RETURN_IF_ERR(o.Bool("hostPID", &s->host_pid));
  RETURN_IF_ERR(o.Bool("hostIPC", &s->host_ipc));
  RETURN_IF_ERR(o.Bool("shareProcessNamespace", &s->share_process_namespace));
  {
    CHILD_OR_RETURN(sc, o, "securityContext");
    RETURN_IF_ERR(ParsePodSecurityContext(sc, &s->security_context));
  }
  RETURN_IF_ERR(o.Objects("imagePullSecrets", [&](const Obj& r) -> absl::Status {
    std::string name;
    RETURN_IF_ERR(r.String("name", &name));
    s->image_pull_secrets.push_back(std::move(name));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.String("hostname", &s->hostname));
  RETURN_IF_ERR(o.String("subdomain", &s->subdomain));
  RETURN_IF_ERR(o.String("hostnameOverride", &s->hostname_override));
  RETURN_IF_ERR(o.String("schedulerName", &s->scheduler_name));
  if (s->scheduler_name.empty()) s->scheduler_name = "default-scheduler";
  RETURN_IF_ERR(o.Objects("tolerations", [&](const Obj& t) -> absl::Status {
    Toleration tol;
    RETURN_IF_ERR(t.String("key", &tol.key));
    RETURN_IF_ERR(t.String("operator", &tol.op));
    RETURN_IF_ERR(t.String("value", &tol.value));
    RETURN_IF_ERR(t.String("effect", &tol.effect));
    RETURN_IF_ERR(t.Integer("tolerationSeconds", &tol.toleration_seconds));
    s->tolerations.push_back(std::move(tol));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.Objects("hostAliases", [&](const Obj& h) -> absl::Status {
    HostAlias alias;
    RETURN_IF_ERR(h.String("ip", &alias.ip));
    RETURN_IF_ERR(h.StringList("hostnames", &alias.hostnames));
    s->host_aliases.push_back(std::move(alias));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.Integer("priority", &s->priority));
  RETURN_IF_ERR(o.String("priorityClassName", &s->priority_class_name));
  RETURN_IF_ERR(
      Optional(o, "dnsConfig", &s->dns_config, [](const Obj& d, PodDnsConfig* c) -> absl::Status {
        RETURN_IF_ERR(d.StringList("nameservers", &c->nameservers));
        RETURN_IF_ERR(d.StringList("searches", &c->searches));
        return d.Objects("options", [&](const Obj& opt) -> absl::Status {
          PodDnsConfigOption option;
          RETURN_IF_ERR(opt.String("name", &option.name));
          RETURN_IF_ERR(opt.String("value", &option.value));
          c->options.push_back(std::move(option));
          return absl::OkStatus();
        });
      }));
  RETURN_IF_ERR(o.Objects("readinessGates", [&](const Obj& g) -> absl::Status {
    std::string type;
    RETURN_IF_ERR(g.String("conditionType", &type));
    s->readiness_gates.push_back(std::move(type));
    return absl::OkStatus();
  }));
  RETURN_IF_ERR(o.String("runtimeClassName", &s->runtime_class_name));
  RETURN_IF_ERR(o.Bool("enableServiceLinks", &s->enable_service_links));
  RETURN_IF_ERR(o.Resources("overhead", &s->overhead));
  if (o.Has("os")) {
    CHILD_OR_RETURN(os, o, "os");
    std::string name;
    RETURN_IF_ERR(os.String("name", &name));
    s->os = std::move(name);
  }
  return o.Bool("setHostnameAsFQDN", &s->set_hostname_as_fqdn);
}

}  // namespace

std::string DefaultImagePullPolicy(const std::string& image) {
  // parsers.ParseImageName: the tag of the last path component; none and no digest is
  // "latest". A digest (with or without a tag) pins the image.
  std::string ref = image;
  std::string digest;
  if (auto at = ref.find('@'); at != std::string::npos) {
    digest = ref.substr(at + 1);
    ref = ref.substr(0, at);
  }
  std::string tag;
  auto slash = ref.rfind('/');
  auto colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = ref.substr(colon + 1);
  }
  if (tag.empty() && digest.empty()) tag = "latest";
  return tag == "latest" ? "Always" : "IfNotPresent";
}

bool IsRestartableInitContainer(const Container& c) {
  return c.restart_policy.has_value() && *c.restart_policy == "Always";
}

const Container* FindContainer(const Pod& pod, const std::string& name) {
  for (const auto* list :
       {&pod.spec.containers, &pod.spec.init_containers, &pod.spec.ephemeral_containers}) {
    for (const Container& c : *list) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

absl::StatusOr<Pod> ParsePod(const Json& json) {
  if (!json.is_object()) return WrongType("pod", "an object", json);
  Pod pod;
  Obj root(&json, "");
  {
    CHILD_OR_RETURN(meta, root, "metadata");
    RETURN_IF_ERR(ParseMeta(meta, &pod.metadata));
  }
  if (pod.metadata.uid.empty()) return FieldError("metadata.uid", "missing");
  {
    CHILD_OR_RETURN(spec, root, "spec");
    RETURN_IF_ERR(ParseSpec(spec, &pod.spec));
  }
  {
    CHILD_OR_RETURN(status, root, "status");
    RETURN_IF_ERR(ParseStatus(status, &pod.status));
  }
  pod.raw = json;
  return pod;
}

}  // namespace berth::kubelet::api
