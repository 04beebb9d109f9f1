#!/bin/sh
# lab-ca.sh [--reissue] DIR [HOST...] — a lab certificate authority for
# op25b with Debian's openssl: one CA, and certificates for every TLS channel.
# With --reissue, the CA already in DIR is kept and only the certificates
# below are issued again (a rotation: what the chaos soak does before it
# sends SIGHUP).
#
#   DIR/ca.pem                      the CA: --openflow-tls-ca, --api-tls-client-ca,
#                                   --etcd-ca, ovs-vsctl set-ssl's CA, etcd's --trusted-ca-file
#   DIR/controller-{cert,key}.pem   op25bd's OpenFlow and API server certificate
#   DIR/switch-{cert,key}.pem       every OVS bridge host (ovs-vsctl set-ssl KEY CERT CA)
#   DIR/etcd-{cert,key}.pem         etcd's server certificate (--cert-file/--key-file)
#   DIR/op25bd-{cert,key}.pem       op25bd's etcd client certificate (--etcd-cert/--etcd-key),
#                                   also served by the embedded etcd
#   DIR/noc-{cert,key}.pem          an API client (curl --cert/--key)
#
# HOSTs (names or IP addresses) go into the server certificates' subject
# alternative names besides localhost and 127.0.0.1. Keys are created
# mode 0600: op25bd refuses keys that group or others can read.
# Certificates last 825 days. A lab tool: in production use your PKI.
set -eu

reissue=false
if [ "${1:-}" = "--reissue" ]; then
	reissue=true
	shift
fi
if [ $# -lt 1 ]; then
	echo "usage: $0 [--reissue] DIR [HOST...]" >&2
	exit 2
fi
dir=$1
shift
mkdir -p "$dir"
umask 077

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "$@"; do
	case $h in
	*[!0-9.]* | "") case $h in *:*) san="$san,IP:$h" ;; *) san="$san,DNS:$h" ;; esac ;;
	*) san="$san,IP:$h" ;;
	esac
done

# The CA: a self-signed EC P-256 certificate that may only sign.
if ! $reissue || ! [ -s "$dir/ca.pem" ] || ! [ -s "$dir/ca-key.pem" ]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days 825 -subj "/O=op25b lab/CN=op25b lab CA" \
		-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue NAME USAGE: a key and a certificate signed by the CA. USAGE is
# serverAuth,clientAuth for servers (which are also clients: etcd peers,
# OVS's ssl: sessions) and clientAuth for pure clients.
issue() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$dir/$1-key.pem" -out "$dir/$1.csr" -subj "/O=op25b lab/CN=$1" 2>/dev/null
	printf 'basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
		"$2" "$san" >"$dir/$1.ext"
	openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
		-out "$dir/$1-cert.pem" -days 825 -extfile "$dir/$1.ext" 2>/dev/null
	rm -f "$dir/$1.csr" "$dir/$1.ext"
	chmod 600 "$dir/$1-key.pem"
	chmod 644 "$dir/$1-cert.pem"
}

issue controller serverAuth,clientAuth
issue switch serverAuth,clientAuth
issue etcd serverAuth,clientAuth
issue op25bd serverAuth,clientAuth # also the embedded etcd's server certificate
issue noc clientAuth
chmod 644 "$dir/ca.pem"
chmod 600 "$dir/ca-key.pem"
echo "lab CA and certificates in $dir"
