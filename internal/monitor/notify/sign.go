package notify

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// signer signs messages with the region's key; its certificate is served
// at SigningCertURL.
type signer struct {
	key      *rsa.PrivateKey
	certPEM  []byte
	certName string // SimpleNotificationService-<id>.pem
}

type keyRecord struct {
	Key  []byte `json:"key"`  // PKCS#8 DER
	Cert []byte `json:"cert"` // DER
}

var keyKey = []byte{pfxNotify, tagKey}

// loadSigner reads the signing key, or creates it (RSA 2048 and a
// self-signed certificate for ten years) at the first start.
func loadSigner(store kv.Store, region string, now time.Time) (*signer, error) {
	var rec keyRecord
	v, err := store.Get(keyKey)
	switch {
	case err == nil:
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("notify: signing key: %w", err)
		}
	case errors.Is(err, kv.ErrNotFound):
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: "sns." + region + ".regionfs", Organization: []string{"regionfs"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.AddDate(10, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		rec = keyRecord{Key: der, Cert: cert}
		b := store.NewBatch()
		defer b.Close()
		v, _ := json.Marshal(rec)
		b.Set(keyKey, v)
		if err := b.Commit(true); err != nil {
			return nil, fmt.Errorf("notify: save signing key: %w", err)
		}
	default:
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(rec.Key)
	if err != nil {
		return nil, fmt.Errorf("notify: signing key: %w", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("notify: signing key is not RSA")
	}
	id := sha256.Sum256(rec.Cert)
	return &signer{
		key:      key,
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.Cert}),
		certName: "SimpleNotificationService-" + hex.EncodeToString(id[:16]) + ".pem",
	}, nil
}

// stringToSign is SNS's canonical form of a message: the signed fields in
// order, each as "Name\nValue\n".
func stringToSign(m *envelope) string {
	var b strings.Builder
	add := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('\n')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == typeNotification {
		if m.Subject != "" {
			add("Subject", m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
		return b.String()
	}
	add("SubscribeURL", m.SubscribeURL)
	add("Timestamp", m.Timestamp)
	add("Token", m.Token)
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// sign fills the message's signature fields.
func (s *signer) sign(m *envelope, version, certURL string) error {
	var h crypto.Hash
	var sum []byte
	sts := []byte(stringToSign(m))
	switch version {
	case "1":
		h = crypto.SHA1
		d := sha1.Sum(sts)
		sum = d[:]
	default:
		version = "2"
		h = crypto.SHA256
		d := sha256.Sum256(sts)
		sum = d[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, h, sum)
	if err != nil {
		return err
	}
	m.SignatureVersion, m.Signature, m.SigningCertURL = version, base64.StdEncoding.EncodeToString(sig), certURL
	return nil
}

// Verify checks a message's signature against a PEM certificate, as an SNS
// subscriber does (exported for tests and tools).
func Verify(body []byte, certPEM []byte) error {
	var m envelope
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return errors.New("notify: no PEM certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("notify: certificate key is not RSA")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return err
	}
	sts := []byte(stringToSign(&m))
	switch m.SignatureVersion {
	case "1":
		d := sha1.Sum(sts)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA1, d[:], sig)
	case "2":
		d := sha256.Sum256(sts)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
	}
	return fmt.Errorf("notify: unknown SignatureVersion %q", m.SignatureVersion)
}
