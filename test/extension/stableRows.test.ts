import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { StableRows } from '../../src/extension/stableRows';

interface Item {
  id: number;
  label: string;
}
type Node = { item: Item };

function rows() {
  const redraws: string[][] = [];
  const stable = new StableRows<number, Item, Node>({
    shows: (item) => item.label,
    makeNode: (item) => ({ item }),
    valueOf: (node) => node.item,
    update: (node, item) => {
      node.item = item;
    },
    redraw: (nodes) => redraws.push(nodes.map((n) => n.item.label)),
    intervalMs: 1000,
  });
  return { stable, redraws };
}

test('a tree keeps one node per key, with the newest value, and forgets keys no longer listed', () => {
  const { stable } = rows();
  const [a, b] = stable.nodes(
    [
      { id: 1, label: 'a' },
      { id: 2, label: 'b' },
    ],
    (i) => i.id,
  );
  const [b2, c] = stable.nodes(
    [
      { id: 2, label: 'b2' },
      { id: 3, label: 'c' },
    ],
    (i) => i.id,
  );
  assert.equal(b2, b, 'the same object for a key listed again');
  assert.equal(b2!.item.label, 'b2');
  assert.notEqual(c, a);
  const [a2] = stable.nodes([{ id: 1, label: 'a' }], (i) => i.id);
  assert.notEqual(a2, a, 'a key that was dropped gets a new node');
});

test('a redraw names only the rows whose text changed since they were drawn, at most once per interval', (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  t.after(() => mock.timers.reset());
  const { stable, redraws } = rows();
  const items = [
    { id: 1, label: 'a' },
    { id: 2, label: 'b' },
  ];
  const nodes = stable.nodes(items, (i) => i.id);
  for (const node of nodes) stable.drawn(node.item.id, node);
  stable.schedule();
  mock.timers.tick(1000);
  assert.deepEqual(redraws, [], 'nothing changed, nothing is redrawn');

  items[1]!.label = 'b, changed';
  stable.schedule();
  stable.schedule();
  mock.timers.tick(999);
  assert.deepEqual(redraws, [], 'not before the interval since the last redraw');
  mock.timers.tick(1);
  assert.deepEqual(redraws, [['b, changed']]);
  // Until VS Code draws it again, the row still counts as changed; a node from an old listing is ignored.
  stable.drawn(2, { item: items[1]! });
  stable.schedule();
  mock.timers.tick(1000);
  assert.deepEqual(redraws, [['b, changed'], ['b, changed']]);
  stable.drawn(2, nodes[1]!);
  stable.schedule();
  mock.timers.tick(1000);
  assert.equal(redraws.length, 2);
  stable.dispose();
});
