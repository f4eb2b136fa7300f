package heal

import (
	"context"
	"slices"
	"testing"
)

// assetFixture inserts asset-bundle rows and look-alikes that must stay.
const assetFixture = `INSERT INTO ir_attachment (name, res_model, url, type, public) VALUES
	('web.assets_frontend.min.css', 'ir.ui.view', '/web/assets/5adf804/web.assets_frontend.min.css', 'binary', true),
	('web.assets_frontend_lazy.min.js', 'ir.ui.view', '/web/assets/b153db6/web.assets_frontend_lazy.min.js', 'binary', true),
	('web.assets_web.min.js', 'ir.ui.view', '/web/assets/1/0a1b2c3/web.assets_web.min.js', 'binary', true),
	('keep: other model', 'res.partner', '/web/assets/5adf804/fake.css', 'binary', true),
	('keep: view, other url', 'ir.ui.view', '/web/content/42/web.assets_frontend.css', 'binary', true),
	('keep: invoice.pdf', 'account.move', NULL, 'binary', false)`

func attachmentNames(t *testing.T, db string) []string {
	t.Helper()
	conn := cluster.Connect(t, db)
	rows, err := conn.Query(context.Background(), `SELECT name FROM ir_attachment ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestClearAssets(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	cluster.Exec(t, db, assetFixture)
	before := attachmentNames(t, db)

	rep, verify, err := runAction(t, &ClearAssets{ClearAssetsParams{MaxRows: 100}}, testEnv(t), db, true)
	if err != nil || verify != nil || !hasStep(rep, "would delete 3 asset-bundle") {
		t.Fatalf("dry run: err %v, steps %q", err, rep.Steps())
	}
	if got := attachmentNames(t, db); !slices.Equal(got, before) {
		t.Fatalf("dry run changed ir_attachment: %q", got)
	}

	if _, _, err := runAction(t, &ClearAssets{ClearAssetsParams{MaxRows: 2}}, testEnv(t), db, false); err == nil {
		t.Fatal("more rows than max_rows: accepted")
	}
	if got := attachmentNames(t, db); !slices.Equal(got, before) {
		t.Fatalf("refused run changed ir_attachment: %q", got)
	}

	rep, verify, err = runAction(t, &ClearAssets{ClearAssetsParams{MaxRows: 100}}, testEnv(t), db, false)
	if err != nil || !hasStep(rep, "deleted 3 asset-bundle") {
		t.Fatalf("err %v, steps %q", err, rep.Steps())
	}
	verifyWithin(t, verify)
	want := []string{"keep: invoice.pdf", "keep: other model", "keep: view, other url"}
	if got := attachmentNames(t, db); !slices.Equal(got, want) {
		t.Fatalf("left %q, want %q", got, want)
	}

	rep, _, err = runAction(t, &ClearAssets{ClearAssetsParams{MaxRows: 100}}, testEnv(t), db, false)
	if err != nil || !rep.isNothing() {
		t.Fatalf("second run: err %v, steps %q", err, rep.Steps())
	}
}
