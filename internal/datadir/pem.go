package datadir

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// EncodePEM returns certificates as concatenated PEM blocks.
func EncodePEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// MaxCertFile bounds certificate files read from disk.
const MaxCertFile = 1 << 20

// ReadCertificates reads PEM (one or more blocks) or DER certificates from
// a file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxCertFile {
		return nil, fmt.Errorf("%s: %d bytes, limit %d", path, fi.Size(), MaxCertFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCertificates(data)
}

// ParseCertificates parses PEM (CERTIFICATE blocks; others are skipped) or
// a single DER certificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("parse DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CERTIFICATE PEM block")
	}
	return out, nil
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
