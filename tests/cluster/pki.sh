# shellcheck shell=bash
# Certificate helpers for the test control plane (sourced; needs lib.sh's $state).
# All keys are RSA 2048 (what every TLS stack here handles); certificates are signed by the
# cluster CA in <state>/pki/ca.{crt,key}. Existing files are kept, so re-running is cheap.

pki_ca() {
  local d="$state/pki"
  [ -s "$d/ca.crt" ] && [ -s "$d/ca.key" ] && return 0
  openssl genrsa -out "$d/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -nodes -key "$d/ca.key" -sha256 -days 3650 \
    -subj "/CN=berth-test-ca" -out "$d/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
}

# pki_front_proxy: the aggregation layer's request-header CA (a CA of its own, as kubeadm
# does) and the API server's proxy client certificate signed by it.
pki_front_proxy() {
  local d="$state/pki"
  if ! [ -s "$d/front-proxy-ca.crt" ] || ! [ -s "$d/front-proxy-ca.key" ]; then
    openssl genrsa -out "$d/front-proxy-ca.key" 2048 2>/dev/null
    openssl req -x509 -new -nodes -key "$d/front-proxy-ca.key" -sha256 -days 3650 \
      -subj "/CN=berth-test-front-proxy-ca" -out "$d/front-proxy-ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
  fi
  PKI_CA=front-proxy-ca pki_cert front-proxy-client "/CN=front-proxy-client" client
}

# pki_cert <name> <subject> <server|client|both> [SAN list, e.g. "DNS:a,IP:1.2.3.4"]
# Writes <state>/pki/<name>.{key,crt} unless both exist, signed by <state>/pki/$PKI_CA
# (default ca).
pki_cert() {
  local name=$1 subj=$2 usage=$3 sans=${4:-} d="$state/pki" ca=${PKI_CA:-ca}
  [ -s "$d/$name.crt" ] && [ -s "$d/$name.key" ] && return 0
  local eku
  case "$usage" in
    server) eku=serverAuth ;;
    client) eku=clientAuth ;;
    both) eku=serverAuth,clientAuth ;;
    *) die "pki_cert: bad usage $usage" ;;
  esac
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$ext"
  openssl genrsa -out "$d/$name.key.tmp" 2048 2>/dev/null
  openssl req -new -key "$d/$name.key.tmp" -subj "$subj" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
    -sha256 -days 365 -extfile "$ext" -out "$d/$name.crt.tmp" 2>/dev/null
  rm -f "$ext" "$d/$name.csr"
  mv "$d/$name.key.tmp" "$d/$name.key"
  mv "$d/$name.crt.tmp" "$d/$name.crt"
}

# pki_sa_keys: service-account token signing key pair.
pki_sa_keys() {
  local d="$state/pki"
  [ -s "$d/sa.key" ] && [ -s "$d/sa.pub" ] && return 0
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

# write_kubeconfig <out> <user> <cert> <key>: kubeconfig with embedded CA, cert and key,
# server https://127.0.0.1:6443 (reachable inside the cluster netns).
write_kubeconfig() {
  local out=$1 user=$2 crt=$3 key=$4
  local tmp="$out.tmp"
  cat >"$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: berth-test
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 <"$state/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$crt")
    client-key-data: $(base64 -w0 <"$key")
contexts:
- name: $user@berth-test
  context:
    cluster: berth-test
    user: $user
current-context: $user@berth-test
KUBECONFIG
  chmod 600 "$tmp"
  mv "$tmp" "$out"
}
