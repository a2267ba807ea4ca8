import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, FilterSyntaxError } from '../../src/sandbox/filter';

const message: Record<string, unknown> = {
  ident: '352625333222111',
  'position.speed': 72,
  'position.valid': true,
  'battery.voltage': 3.9,
  'device.name': 'Truck 7',
  din: 5,
};
const matches = (expression: string) => compileFilter(expression)((name) => message[name]);

test('filter: comparisons on numbers, strings and booleans', () => {
  assert.equal(matches('position.speed>60'), true);
  assert.equal(matches('position.speed>=72 && position.speed<=72'), true);
  assert.equal(matches('position.speed<60'), false);
  assert.equal(matches('position.valid==true'), true);
  assert.equal(matches('position.valid==1'), true, 'booleans compare as 1/0 with numbers');
  assert.equal(matches('ident=="352625333222111"'), true);
  assert.equal(matches("device.name!='Truck 8'"), true);
  assert.equal(matches('battery.voltage==3.9'), true);
  assert.equal(matches('ident>100'), false, 'a string is not ordered against a number');
});

test('filter: &&, ||, !, parentheses, arithmetic and wildcard match', () => {
  assert.equal(matches('position.speed>100 || battery.voltage<4'), true);
  assert.equal(matches('!(position.speed>100) && !position.valid==false'), true);
  assert.equal(matches('(position.speed>100 || din==5) && position.valid'), true);
  assert.equal(matches('position.speed/3.6>19 && position.speed*2-4==140'), true);
  assert.equal(matches('-position.speed<0'), true);
  assert.equal(matches('device.name ~ "Truck*"'), true);
  assert.equal(matches('device.name ~ "Car?"'), false);
});

test('filter: a missing parameter makes a plain read false, $param reads null', () => {
  assert.equal(matches('can.fuel>10'), false);
  assert.equal(matches('can.fuel<10'), false);
  assert.equal(matches('$can.fuel==null'), true);
  assert.equal(matches('can.fuel>10 || position.speed>60'), true, 'the other side of || still decides');
  assert.equal(matches('!can.fuel'), true);
  assert.equal(matches('position.speed'), true, 'a bare parameter is a presence/truthiness test');
});

test('filter: syntax errors say where and what is wrong', () => {
  const error = (expression: string) => {
    try {
      compileFilter(expression);
    } catch (e) {
      assert.ok(e instanceof FilterSyntaxError);
      return e.message;
    }
    assert.fail(`"${expression}" should not parse`);
  };
  assert.match(error('position.speed = 5'), /position 16.*compare with ==/);
  assert.match(error('a & b'), /use && and \|\|/);
  assert.match(error('(a > 1'), /expected "\)"/);
  assert.match(error('a > '), /expected a value or a parameter name at position 5, found the end/);
  assert.match(error('"open'), /unterminated string/);
  assert.match(error('a b'), /expected an operator or the end/);
  assert.match(error('  '), /empty/);
  assert.match(error('process.exit()'), /expected/, 'no JavaScript is evaluated');
});
