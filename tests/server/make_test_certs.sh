#!/bin/bash
# Generates a throw-away PKI for xenchand's mTLS tests with the openssl CLI,
# at test time, into DIR (nothing here is committed key material):
#   ca.pem / ca.key            the client and server CA
#   server.pem / server.key    server cert: SAN DNS:localhost, IP:127.0.0.1
#   uri.pem / uri.key          client: SAN URI spiffe://xenchan.test/ctl
#   dns.pem / dns.key          client: SAN DNS:Ctl.Example.Org
#   both.pem / both.key        client: SAN URI urn:xenchan:ops and DNS:ops.example.org
#   cn.pem / cn.key            client: no SAN, CN=provisioner
#   expired.pem / expired.key  client: SAN URI spiffe://xenchan.test/ctl, validity in 2020
#   rogue.pem / rogue.key      client signed by another CA (rogue-ca.pem), SAN URI spiffe://xenchan.test/ctl
# Usage: make_test_certs.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
export OPENSSL_CONF=/dev/null  # no host configuration leaks in

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_ca() {  # NAME CN
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1.pem"
}

# leaf NAME CA SUBJECT EXT-LINES...
leaf() {
  local name=$1 ca=$2 subj=$3
  shift 3
  key "$name.key"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    for line in "$@"; do echo "$line"; done
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 2 \
    -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
}

make_ca ca "xenchan test CA"
make_ca rogue-ca "rogue CA"
leaf server ca "/CN=xenchand" "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf uri ca "/CN=ignored-uri" "extendedKeyUsage=clientAuth" "subjectAltName=URI:spiffe://xenchan.test/ctl"
leaf dns ca "/CN=ignored-dns" "extendedKeyUsage=clientAuth" "subjectAltName=DNS:Ctl.Example.Org"
leaf both ca "/CN=ignored-both" "extendedKeyUsage=clientAuth" \
  "subjectAltName=URI:urn:xenchan:ops,DNS:ops.example.org"
leaf cn ca "/CN=provisioner" "extendedKeyUsage=clientAuth"
leaf rogue rogue-ca "/CN=rogue" "extendedKeyUsage=clientAuth" \
  "subjectAltName=URI:spiffe://xenchan.test/ctl"

# An expired client certificate: `openssl ca` is the CLI that takes explicit
# start and end dates.
mkdir -p expired-ca
: > expired-ca/index.txt
echo 1000 > expired-ca/serial
cat > expired-ca/ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = expired-ca
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://xenchan.test/ctl
CNF
key expired.key
openssl req -new -key expired.key -subj "/CN=expired" -out expired.csr
openssl ca -batch -config expired-ca/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20200102000000Z -extensions ext -notext \
  -out expired.pem 2>/dev/null
rm -f ./*.csr ./*.ext
echo "test PKI in $dir"
