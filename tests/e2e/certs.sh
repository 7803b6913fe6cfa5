#!/bin/sh
# certs.sh DIR: throwaway test PKI for the TLS end-to-end tests (mockup
# --tls-cert/--tls-key).  Generated at test time only; nothing here is secret
# and nothing generated should be committed.
#
# Writes into DIR (created if missing; existing files are overwritten, so
# running it again is harmless):
#   ca.pem ca.key                  test CA ("Relay Test CA")
#   other-ca.pem other-ca.key      unrelated CA ("Relay Other CA")
#   localhost.pem localhost.key    CN=localhost, SAN DNS:localhost,IP:127.0.0.1, by ca
#   localhost-ec.pem/.key          same names, P-256 (prime256v1) key, by ca
#   wrongname.pem/.key             SAN DNS:not-this-host.test only, by ca
#   expired.pem/.key               SAN localhost, valid 2020-01-01..2021-01-01, by ca
#   other.pem/.key                 SAN localhost, by other-ca
# Leaf certificates contain only the leaf (no chain).  RSA keys are 2048 bits.
# Needs the openssl command line tool (1.1.1 or 3.x).
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$1
mkdir -p "$DIR"
cd "$DIR"

OPENSSL=${OPENSSL:-openssl}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relay-certs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

rsa_key() { # FILE
    "$OPENSSL" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$1" 2>/dev/null
    chmod 600 "$1"
}

ec_key() { # FILE
    "$OPENSSL" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
        -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null
    chmod 600 "$1"
}

ca() { # NAME "CN"
    rsa_key "$1.key"
    "$OPENSSL" req -x509 -new -key "$1.key" -sha256 -days 3650 \
        -subj "/O=Relay tests/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$1.pem"
}

# leaf NAME CA CN SAN STARTDATE ENDDATE: NAME.key must exist.  Signed with
# `openssl ca` (minimal config, throwaway database) because it accepts
# explicit -startdate/-enddate on every OpenSSL version, unlike `x509 -req`.
leaf() {
    name=$1 issuer=$2 cn=$3 san=$4 start=$5 end=$6
    db="$WORK/$name"
    mkdir -p "$db"
    : >"$db/index.txt"
    cat >"$db/ca.cnf" <<EOF
[ca]
default_ca = tca
[tca]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = ext
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    # random 63-bit serial, so certificates from different runs never share
    # issuer+serial
    "$OPENSSL" rand -hex 8 | sed 's/^./4/' >"$db/serial"
    "$OPENSSL" req -new -key "$name.key" -subj "/CN=$cn" -out "$db/req.csr"
    "$OPENSSL" ca -batch -notext -config "$db/ca.cnf" \
        -cert "$issuer.pem" -keyfile "$issuer.key" \
        -startdate "$start" -enddate "$end" \
        -in "$db/req.csr" -out "$name.pem" 2>"$db/ca.log" ||
        { cat "$db/ca.log" >&2; exit 1; }
}

START=20200101000000Z        # any time in the past works as a start date
LATER=20491231235959Z        # far future (UTCTime ends with 2049)

ca ca "Relay Test CA"
ca other-ca "Relay Other CA"

rsa_key localhost.key
leaf localhost ca localhost "DNS:localhost,IP:127.0.0.1" $START $LATER

ec_key localhost-ec.key
leaf localhost-ec ca localhost "DNS:localhost,IP:127.0.0.1" $START $LATER

rsa_key wrongname.key
leaf wrongname ca not-this-host.test "DNS:not-this-host.test" $START $LATER

rsa_key expired.key
leaf expired ca localhost "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20210101000000Z

rsa_key other.key
leaf other other-ca localhost "DNS:localhost,IP:127.0.0.1" $START $LATER
