package auth

import "testing"

func TestAPIKey(t *testing.T) {
	k, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := KeyPrefix(k.Plaintext)
	if err != nil || p != k.Prefix || !KeyMatches(k.Plaintext, k.Hash) {
		t.Fatalf("key %+v: prefix %q %v", k, p, err)
	}
	for i := 0; i < 200; i++ { // secrets with "_" and "-" in them
		k, _ := NewAPIKey()
		if p, err := KeyPrefix(k.Plaintext); err != nil || p != k.Prefix {
			t.Fatalf("KeyPrefix(%q) = %q, %v", k.Plaintext, p, err)
		}
	}
	other, _ := NewAPIKey()
	if KeyMatches(other.Plaintext, k.Hash) {
		t.Error("another key matches")
	}
	for _, bad := range []string{"", "tf_", "Bearer x", "tf_0123456789ab_short", "xx_0123456789ab_" + k.Plaintext[16:]} {
		if _, err := KeyPrefix(bad); err == nil {
			t.Errorf("KeyPrefix(%q) accepted", bad)
		}
	}
}

func TestPassword(t *testing.T) {
	pw, _ := NewPassword()
	h, err := HashPassword(pw)
	if err != nil || !CheckPassword(pw, h) || CheckPassword(pw+"x", h) || CheckPassword(pw, "plain") {
		t.Fatalf("password check failed: %v", err)
	}
}
