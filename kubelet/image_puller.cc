#include "kubelet/image_puller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"

namespace berth::kubelet {

namespace v1 = cri::v1;

ImagePuller::ImagePuller(cri::ImageService* images, ApiClient* api, ImagePullerOptions options)
    : images_(images), api_(api), opts_(std::move(options)) {}

void ImagePuller::Event(const api::Pod& pod, const std::string& type, const std::string& reason,
                        const std::string& message, const std::string& container) {
  if (opts_.record_event) opts_.record_event(pod, type, reason, message, container);
}

DockerKeyring ImagePuller::PullSecretsKeyring(const api::Pod& pod) {
  DockerKeyring keyring;
  const std::string& ns = pod.metadata.namespace_;
  std::vector<std::string> missing;
  for (const std::string& name : pod.spec.image_pull_secrets) {
    if (name.empty()) continue;
    auto secret = api_->Get(absl::StrCat("/api/v1/namespaces/", ns, "/secrets/", name));
    absl::Status s = secret.ok() ? keyring.AddSecret(*secret) : secret.status();
    if (!s.ok()) {
      LOG(WARNING) << "pod " << pod.Key() << ": image pull secret " << name << ": " << s;
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    Event(pod, "Warning", "FailedToRetrieveImagePullSecret",
          absl::StrCat("Unable to retrieve some image pull secrets (", absl::StrJoin(missing, ", "),
                       "); attempting to pull the image may not succeed."),
          "");
  }
  return keyring;
}

EnsureImageResult ImagePuller::EnsureImage(const api::Pod& pod, const api::Container& c,
                                           const v1::PodSandboxConfig& sandbox,
                                           ImagePullState* state) {
  EnsureImageResult out;
  const std::string& image = c.image;
  const std::string& policy = c.image_pull_policy;
  const std::string& cname = c.name;
  absl::Time now = opts_.clock();
  if (policy != "Always") {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    auto st = images_->ImageStatus(req);
    if (st.ok() && st->has_image() && !st->image().id().empty()) {
      out.image_ref = st->image().id();
      return out;
    }
    if (policy == "Never") {
      out.reason = "ErrImageNeverPull";
      out.image_ref = absl::FailedPreconditionError(
          absl::StrCat("Container image \"", image, "\" is not present with pull policy of Never"));
      return out;
    }
  }
  auto b = state->backoff.find(image);
  if (b != state->backoff.end() && now < b->second.until) {
    out.reason = "ImagePullBackOff";
    Event(pod, "Normal", "BackOff", absl::StrCat("Back-off pulling image \"", image, "\""), cname);
    Event(pod, "Warning", "Failed", "Error: ImagePullBackOff", cname);
    out.retry_after.push_back(b->second.until - now);
    out.image_ref = absl::UnavailableError(absl::StrCat(
        "Back-off pulling image \"", image, "\": ErrImagePull: ", state->last_error[image]));
    return out;
  }
  v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  *req.mutable_sandbox_config() = sandbox;
  LOG(INFO) << "pod " << pod.Key() << ": pulling image " << image;
  Event(pod, "Normal", "Pulling", absl::StrCat("Pulling image \"", image, "\""), cname);
  // As the kubelet: with credentials from the pod's imagePullSecrets that match the image,
  // each is tried in turn (most specific first) until one pull succeeds; without any, the
  // pull is anonymous.
  std::vector<RegistryCredential> creds = PullSecretsKeyring(pod).Lookup(image);
  absl::StatusOr<v1::PullImageResponse> pulled = absl::UnknownError("no pull attempted");
  std::vector<std::string> errors;
  for (size_t i = 0; i < std::max<size_t>(creds.size(), 1); ++i) {
    if (i < creds.size()) {
      auto* auth = req.mutable_auth();
      auth->set_username(creds[i].username);
      auth->set_password(creds[i].password);
      auth->set_identity_token(creds[i].identity_token);
      auth->set_server_address(creds[i].key);
    }
    pulled = images_->PullImage(req);
    if (pulled.ok()) break;
    errors.push_back(std::string(pulled.status().message()));
  }
  if (!pulled.ok() && errors.size() > 1) {
    pulled = absl::Status(pulled.status().code(), absl::StrJoin(errors, "; "));
  }
  if (!pulled.ok()) {
    absl::Duration d = opts_.backoff_initial;
    if (b != state->backoff.end()) d = std::min(b->second.duration * 2, opts_.backoff_max);
    state->backoff[image] = ImagePullState::Backoff{now + d, d};
    std::string msg =
        absl::StrCat("failed to pull image \"", image, "\": ", pulled.status().message());
    state->last_error[image] = msg;
    // As kubelet: ErrImagePull stays until the next sync, which (half-way through the
    // back-off) reports ImagePullBackOff; the pull is retried when the back-off ends.
    out.retry_after = {d / 2, d};
    out.reason = "ErrImagePull";
    Event(pod, "Warning", "Failed",
          absl::StrCat("Failed to pull image \"", image, "\": ", pulled.status().message()), cname);
    Event(pod, "Warning", "Failed", "Error: ErrImagePull", cname);
    out.image_ref = absl::Status(pulled.status().code(), msg);
    return out;
  }
  Event(pod, "Normal", "Pulled", absl::StrCat("Successfully pulled image \"", image, "\""), cname);
  state->backoff.erase(image);
  state->last_error.erase(image);
  out.image_ref = pulled->image_ref().empty() ? image : pulled->image_ref();
  return out;
}

}  // namespace berth::kubelet
