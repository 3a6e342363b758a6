// A throw-away PKI for the mutual TLS tests, generated in memory at test
// time with crypto/x509 (no key material is committed): a CA, xenchand's
// certificate for 127.0.0.1 and localhost, and client certificates by URI
// SAN, from that CA or from another one.

package xenchantest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a CA whose files are in Dir.
type PKI struct {
	t    testing.TB
	Dir  string
	name string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewPKI makes a CA called name, written to DIR/name-ca.pem.
func NewPKI(t testing.TB, dir, name string) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{t: t, Dir: dir, name: name, cert: cert, key: key}
	p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

// CAFile is the CA certificate's PEM file.
func (p *PKI) CAFile() string { return filepath.Join(p.Dir, p.name+"-ca.pem") }

// Server issues xenchand's certificate (SAN IP 127.0.0.1, DNS localhost)
// and returns its certificate and key files.
func (p *PKI) Server(name string) (certFile, keyFile string) {
	return p.issue(name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "xenchand"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a client certificate whose identity is the URI SAN uri.
func (p *PKI) Client(name, uri string) (certFile, keyFile string) {
	u, err := url.Parse(uri)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.issue(name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (p *PKI) issue(name string, tmpl *x509.Certificate) (string, string) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(name+".pem", "CERTIFICATE", der)
	p.write(name+".key", "PRIVATE KEY", keyDER)
	return filepath.Join(p.Dir, name+".pem"), filepath.Join(p.Dir, name+".key")
}

func (p *PKI) write(file, kind string, der []byte) {
	p.t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	if err := os.WriteFile(filepath.Join(p.Dir, file), b, 0o600); err != nil {
		p.t.Fatal(err)
	}
}
