using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class OrderedDeliveries : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_deliveries_AfterId",
                table: "deliveries");

            migrationBuilder.DropIndex(
                name: "IX_deliveries_OrderKey",
                table: "deliveries");

            migrationBuilder.AddColumn<bool>(
                name: "Ordered",
                table: "deliveries",
                type: "boolean",
                nullable: false,
                defaultValue: false);

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_order_profile",
                table: "deliveries",
                columns: new[] { "OrderKey", "ProfileId", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_deliveries_order_profile",
                table: "deliveries");

            migrationBuilder.DropColumn(
                name: "Ordered",
                table: "deliveries");

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_AfterId",
                table: "deliveries",
                column: "AfterId",
                unique: true,
                filter: "\"AfterId\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_deliveries_OrderKey",
                table: "deliveries",
                column: "OrderKey");
        }
    }
}
